import os
import re
import sys

from snakemake.utils import min_version, validate

from difficulty.settings import config_errors as difficulty_config_errors
from earlyexit.models.backbones import PRETRAINED_HERE, resolve_entry
from earlyexit.plumbing.config_check import config_errors, input_errors
from earlyexit.plumbing import paths
from earlyexit.data.prepare import task_source, task_split_files, task_subsample
from earlyexit.data.tasks import get_task
from earlyexit.methods import (backbone_runs, get_method, method_variants, run_recipe, run_variant, task_max_seq_len,
                               training_runs, with_training_runs)
from earlyexit.plumbing.gpu_slots import apply_local_gpu_limit
from earlyexit.plumbing.preflight import gpus_for

min_version("9.0")

CONFIG_SCHEMA = "../schemas/config.schema.yaml"

# One-line errors naming the key first (the config, then the local files it names, which would
# otherwise surface as a MissingInputException); then snakemake's validation fills schema defaults.
_errors = (config_errors(config, workflow.source_path(CONFIG_SCHEMA)) or difficulty_config_errors(config)
           or input_errors(config))
if _errors:
    sys.exit(f"config error: {_errors[0]}")
validate(config, CONFIG_SCHEMA)

# A local run (no --jobs: cluster executors use it) starts at most one GPU job per visible GPU unless
# --resources gpu=N says otherwise; each GPU job then claims its own device (plumbing/gpu_slots.py).
apply_local_gpu_limit(workflow)

PRESET = config["preset"]
# (method, variant) pairs of the config, from the methods registry (earlyexit/methods/).
RUNS = method_variants(config["methods"])
# The summarization table's grid (config section `summarization`, rules in summarization.smk): its
# tasks, backbones and (method, variant) pairs run through the same rules as the other tasks.
SUMMARIZATION = config["summarization"]
SUMMARY_TASKS = SUMMARIZATION["tasks"] if SUMMARIZATION["enabled"] else []
SUMMARY_BACKBONES = SUMMARIZATION["backbones"] if SUMMARIZATION["enabled"] else {}
# (method, variant) pairs of the section and of the backbones that name their own (the -6L baselines)
SUMMARY_RUNS = list(
    dict.fromkeys(
        method_variants(SUMMARIZATION["methods"] if SUMMARIZATION["enabled"] else {})
        + [pair for entry in SUMMARY_BACKBONES.values() for pair in method_variants(entry.get("methods") or {})]
    )
)
# Hash functions some run needs (the `hash` artifacts its method declares), fitted by rule fit_hash.
HASHES = sorted(
    {spec["hash"] for method, variant in RUNS + SUMMARY_RUNS for spec in get_method(method).artifacts(variant, 0).values() if spec["kind"] == "hash"}
)


def method_settings(method):
    """A dynamic method's own config section (RunContext.settings); {} for the other families."""
    if get_method(method).family != "dynamic":
        return {}
    return dict(config["dynamic"].get(method, {}))


def training_setting(method, run):
    """The training-time setting of a run name ({} for a run without one)."""
    return dict(training_runs(get_method(method), run_variant(run), method_settings(method)))[run]


# (method, run) pairs each classification backbone runs (its `methods`, what applies to it, what
# the hub makes reachable: earlyexit.methods.backbone_runs); then one run per value of a method's
# training-time sweep (Method.train_sweep, e.g. ConsistentEE's alpha grid), named
# "<variant>@<parameter>=<value>": the `variant` wildcard and path segment carry the run name.
BACKBONE_RUNS = {backbone: with_training_runs(config, backbone_runs(config, backbone)) for backbone in config["backbones"]}


def hash_fits(backbone):
    """(hash, fit) of every hash artifact a run on `backbone` declares: fit "train" or "seed<N>"."""
    return sorted(
        {(spec["hash"], spec["fit"]) for method, variant in BACKBONE_RUNS[backbone] for seed in config["seeds"]
         for spec in get_method(method).artifacts(run_variant(variant), seed).values() if spec["kind"] == "hash"}
    )


# Wildcard placeholders for the path builders of earlyexit.plumbing.paths.
W = {k: f"{{{k}}}" for k in ("task", "backbone", "method", "variant", "seed", "hash", "fit")}
# The priority of short jobs that training jobs wait on (data, tokenisation, hash fitting, pre-training): above any
# training job's (its number of runs), so the long jobs they unlock do not start last.
UNLOCKS_TRAINING = 1000


def _alternatives(values):
    return "|".join(map(re.escape, values)) or "(?!)"


# Multi-exit pre-training (rules in pretrain.smk): the backbones it makes, and the tasks whose train
# splits are its corpus (prepared like the grid's tasks, also where the grid does not run them).
PRETRAINED = [name for name, entry in config["backbones"].items() if entry["source"] == PRETRAINED_HERE]
CORPUS_TASKS = (config["pretraining"]["corpus"]["tasks"] or config["tasks"]) if PRETRAINED else []


wildcard_constraints:
    task=_alternatives(dict.fromkeys([*config["tasks"], *SUMMARY_TASKS, *CORPUS_TASKS])),
    backbone=_alternatives([*config["backbones"], *SUMMARY_BACKBONES]),
    method=_alternatives(dict.fromkeys(m for m, _ in RUNS + SUMMARY_RUNS)),
    variant=_alternatives(dict.fromkeys([v for _, v in RUNS + SUMMARY_RUNS] + [v for pairs in BACKBONE_RUNS.values() for _, v in pairs])),
    hash=_alternatives(HASHES),
    fit=r"train|seed\d+",
    seed=r"\d+",


# No onstart GPU/network check: on a cluster the launching host is a login node. Each job checks
# its own node (earlyexit.plumbing.preflight.check_job): GPU where it asked for one (resource gpu),
# the hub where it downloads.


def keep_or_temp(path):
    """Checkpoints are kept only when training.save_checkpoint asks; else removed once consumed."""
    return path if config["training"]["save_checkpoint"] else temp(path)


def is_summarization(task):
    return task in SUMMARY_TASKS


def data_config(task):
    """The data section a task's source is read from: summarization.source stands in for data.source."""
    if is_summarization(task) and SUMMARIZATION["source"]:
        return {**config["data"], "source": SUMMARIZATION["source"]}
    return config["data"]


def backbone_entry(name):
    """A backbone's config entry: the classification backbones, then the summarization ones. A
    pre-trained-here backbone's carries its base's entry and the pre-training's output folder."""
    if name not in config["backbones"]:
        return SUMMARY_BACKBONES[name]
    return resolve_entry(config["backbones"], name, weights=paths.pretrained_model(PRESET, name))


def backbone_weights(wildcards):
    """The weights a job on this backbone loads, where a rule of the DAG makes them (pretrain.smk)."""
    return [paths.pretrained_model(PRESET, wildcards.backbone)] if wildcards.backbone in PRETRAINED else []


def max_seq_len(task):
    if is_summarization(task):
        return SUMMARIZATION["max_source_len"]
    return task_max_seq_len(config["training"], task)


def run_results():
    """Every run record of the config: task x backbone x (method, variant) x seed, the pairs each
    backbone runs (earlyexit.methods.backbone_runs)."""
    return [
        paths.run_record(PRESET, task, backbone, method, variant, seed)
        for task in config["tasks"]
        for backbone in config["backbones"]
        for method, variant in BACKBONE_RUNS[backbone]
        for seed in config["seeds"]
    ]


def dynamic_runs(backbone=None):
    """(method, variant) pairs whose method is dynamic (each run gets a sweep): on `backbone`, or on any."""
    runs = BACKBONE_RUNS[backbone] if backbone else [pair for pairs in BACKBONE_RUNS.values() for pair in pairs]
    return list(dict.fromkeys((m, v) for m, v in runs if get_method(m).family == "dynamic"))


def sweep_results():
    """Every sweep file of the config: task x backbone x dynamic (method, run) x seed."""
    return [
        paths.sweep(PRESET, task, backbone, method, variant, seed)
        for task in config["tasks"]
        for backbone in config["backbones"]
        for method, variant in dynamic_runs(backbone)
        for seed in config["seeds"]
    ]


def curve_runs(backbone, method, variant):
    """The runs of one curve: every run of `variant` (all its training-time settings) on `backbone`."""
    return [run for m, run in dynamic_runs(backbone) if m == method and run_variant(run) == variant]


def curves(backbone=None):
    """(method, variant) of every dynamic curve on `backbone` (or on any)."""
    return list(dict.fromkeys((m, run_variant(run)) for m, run in dynamic_runs(backbone)))


def curve_sweeps(wildcards):
    """Every sweep file of one curve, all its runs x all seeds (what match_operating_points reads)."""
    return [
        paths.sweep(PRESET, wildcards.task, wildcards.backbone, wildcards.method, run, seed)
        for run in curve_runs(wildcards.backbone, wildcards.method, wildcards.variant)
        for seed in config["seeds"]
    ]


def matched_results():
    """Every matched-point file of the config: task x backbone x dynamic (method, variant)."""
    return [
        paths.matched(PRESET, task, backbone, method, variant)
        for task in config["tasks"]
        for backbone in config["backbones"]
        for method, variant in curves(backbone)
    ]


def training_params(wildcards, method):
    """The training section as TrainConfig takes it (earlyexit.methods.run_recipe: the method's recipe,
    the task's epochs), with the task's max_seq_len (a summarization task's: its source length).
    train_eval.py reads checkpoint_every_steps from the config: it changes no result."""
    training = SUMMARIZATION["training"] if is_summarization(wildcards.task) else config["training"]
    recipe = run_recipe(training, config["method_training"], config["training_recipe"], method, wildcards.task)
    return {**recipe, "max_seq_len": max_seq_len(wildcards.task)}


def summary_target_len(task):
    """Target tokens kept for a summarization task (None for the other tasks)."""
    if not is_summarization(task):
        return None
    return SUMMARIZATION["max_target_len_per_task"].get(task, SUMMARIZATION["max_target_len"])


def summary_run_params(wildcards):
    """generate() settings and the full model's depths of a summarization run (None for the others)."""
    if not is_summarization(wildcards.task):
        return None
    entry = SUMMARY_BACKBONES[wildcards.backbone]
    return {
        "generation": {**SUMMARIZATION["generation"], **SUMMARIZATION["generation_per_task"].get(wildcards.task, {})},
        "reference_decoder_layers": entry.get("reference_decoder_layers"),
    }


def summarization_runs():
    """Every summarization run record: task x backbone of its language x (method, variant) x seed."""
    return [
        paths.run_record(PRESET, task, backbone, method, variant, seed)
        for task in SUMMARY_TASKS
        for backbone, entry in SUMMARY_BACKBONES.items()
        if entry["language"] == get_task(task).language
        for method, variant in method_variants(entry.get("methods") or SUMMARIZATION["methods"])
        for seed in SUMMARIZATION["seeds"]
    ]


def analysis_targets():
    """The final tables and figures of the HashEE side (rules in analysis.smk, summarization.smk)."""
    return [
        paths.table(PRESET, "runs.csv"),
        *[paths.table(PRESET, f"hash_functions.{ext}") for ext in ("csv", "md", "tex")],
        *[paths.figure(PRESET, f"score_vs_speedup.{ext}") for ext in ("png", "pdf")],
        *[paths.table(PRESET, f"elue_main.{ext}") for ext in ("csv", "md", "tex")],
        *[paths.figure(PRESET, f"backbone_effect.{ext}") for ext in ("png", "pdf")],
        *paths.summarization_targets(PRESET, SUMMARIZATION["enabled"]),
        *dynamic_targets(),
        *timing_targets(),   # the inference-time figure and table (timing.smk)
        *[paths.table(PRESET, f"claims.{ext}") for ext in ("csv", "md", "tex")],   # the claims ledger
    ]


def claims_inputs(wildcards):
    """What the claims ledger (table_claims in analysis.smk) reads besides the runs and curves tables:
    the run records and sweep files those tables point to and, where this preset makes them, the
    summarization runs, the timing records and the difficulty study's tables."""
    inputs = {"records": run_results(), "sweeps": sweep_results()}
    if SUMMARIZATION["enabled"]:
        inputs["summaries"] = summarization_runs()
    if timing_targets():
        inputs["timing"] = [paths.timing(PRESET, task, backbone) for task in timing_tasks() for backbone in timing_backbones()]
    if DIFF["enabled"]:
        inputs["difficulty_human"] = paths.table(PRESET, "difficulty_human.csv")
        inputs["difficulty_model"] = paths.table(PRESET, "difficulty_model.csv")
    return {name: files for name, files in inputs.items() if files}


def dynamic_targets():
    """The dynamic methods' table and curves figure (rules in sweeps.smk), when the config runs any."""
    if not dynamic_runs():
        return []
    return [
        paths.table(PRESET, "dynamic_curves.csv"),
        *[paths.table(PRESET, f"dynamic.{ext}") for ext in ("csv", "md", "tex")],
        *[paths.figure(PRESET, f"dynamic_curves.{ext}") for ext in ("png", "pdf")],
    ]


def elue_files(wildcards):
    """For a task whose source is dir, the local ELUE files are inputs, so editing them re-runs it."""
    if is_summarization(wildcards.task) or task_source(config["data"], wildcards.task) != "dir":
        return []
    root = config["data"]["data_dir"]
    return sorted({f"{root}/{wildcards.task}/{name}" for name in task_split_files(config["data"], wildcards.task).values()})


def artifact_path(wildcards, spec, method):
    """The file of one artifact `method` declares (earlyexit.methods.base.Method.artifacts)."""
    if spec["kind"] == "hash":
        return paths.hash_artifact(PRESET, wildcards.task, wildcards.backbone, spec["hash"], spec["fit"], "npz")
    if spec["kind"] == "checkpoint":
        # the selected weights of another run on the same task x backbone (rule train_eval)
        return paths.checkpoint(PRESET, wildcards.task, wildcards.backbone, spec["method"], spec["variant"], spec["seed"])
    raise ValueError(f"method {method}: no rule makes artifacts of kind {spec['kind']!r}")


class RunJob:
    """The runs one job of train_eval or sweep_exits covers: one run (wildcards task, backbone,
    method, variant, seed) or, with group_small_jobs, every task x variant x seed of one method on
    one backbone (no wildcards; named <name>_<method>_<backbone>), or with group_small_jobs
    per-task every variant x seed of one method on one backbone and task
    (<name>_<method>_<backbone>_<task>). Either way the script gets
    `params.runs`, one dict per run with everything task-dependent (its task, tokenized files,
    training section and artifacts), so it never reads wildcards."""

    def __init__(self, name, method=None, runs=(), tasks=None, backbones=None, per_task=False):
        self.method = method
        self.name = name
        if method is None:
            self.rule = name
            # the tasks / backbones its wildcards may take (None: any of the config's)
            self.task_pattern = _alternatives(tasks) if tasks is not None else ".+"
            self.backbone_pattern = _alternatives(backbones) if backbones is not None else ".+"
            self.cells = [(W["task"], W["variant"], W["seed"])]
            self.backbone = W["backbone"]
            self.log = paths.log_file(PRESET, name, W["task"], W["backbone"], W["method"], W["variant"], f"seed{W['seed']}")
        else:
            (self.backbone,) = backbones   # a grouped job has one backbone
            self.rule = f"{name}_{method}_{slug(self.backbone)}" + (f"_{slug(tasks[0])}" if per_task else "")
            self.task_pattern = self.backbone_pattern = ".+"   # no wildcards
            self.cells = [(task, v, seed) for task in tasks for m, v in runs if m == method for seed in config["seeds"]]
            self.log = paths.log_file(PRESET, name, self.backbone, method, *(tasks if per_task else []), "all-runs")
        self.tasks = list(dict.fromkeys(task for task, _, _ in self.cells))
        # a grouped job of many runs first: started last, it would leave the other cores idle at the end
        self.size = len(self.cells)

    def files(self, path_of):
        """One file per run, from a path builder of earlyexit.plumbing.paths (run_record, checkpoint, ...)."""
        method = W["method"] if self.method is None else self.method
        return [path_of(PRESET, task, self.backbone, method, variant, seed) for task, variant, seed in self.cells]

    def tokenized(self, ext):
        """The tokenized files (ext npz or json) of its tasks, one per task."""
        return [paths.tokenized(PRESET, task, self.backbone, ext) for task in self.tasks]

    def _cells(self, wildcards):
        """(task, backbone, method, run name, seed) of each run, wildcards filled in."""
        if self.method is None:
            return [(wildcards.task, wildcards.backbone, wildcards.method, wildcards.variant, int(wildcards.seed))]
        return [(task, self.backbone, self.method, run, int(seed)) for task, run, seed in self.cells]

    def runs(self, wildcards):
        """Per run: task, backbone (name and entry), tokenized files, training section, method,
        variant, run name, training-time setting, seed, artifacts (name -> file, as the method
        declares) and (summarization) generation settings."""
        runs = []
        for task, backbone, method, run, seed in self._cells(wildcards):
            cell = Cell(task, backbone)
            runs.append({
                "task": task, "backbone": backbone, "backbone_entry": backbone_entry(backbone),
                "npz": paths.tokenized(PRESET, task, backbone, "npz"),
                "meta": paths.tokenized(PRESET, task, backbone, "json"),
                "training": training_params(cell, method), "summarization": summary_run_params(cell),
                # "variant" is the run name here; the run gets its variant and training-time setting apart
                "method": method, "variant": run_variant(run), "run": run,
                "train_setting": training_setting(method, run), "seed": seed,
                "artifacts": {name: artifact_path(cell, spec, method)
                              for name, spec in get_method(method).artifacts(run_variant(run), seed).items()},
            })
        return runs

    def settings(self, wildcards):
        return method_settings(self.method or wildcards.method)

    def artifact_inputs(self, wildcards):
        return sorted({path for run in self.runs(wildcards) for path in run["artifacts"].values()})

    def gpu(self, wildcards):
        return gpus_for(config, config["device"])

    def weights(self, wildcards):
        """The pre-trained-here weights its backbone loads (backbone_weights), [] for the others."""
        return backbone_weights(wildcards if self.method is None else Cell(None, self.backbone))


class Cell:
    """A task x backbone in place of the wildcards the per-run helpers above read."""

    def __init__(self, task, backbone):
        self.task, self.backbone = task, backbone


def run_jobs(name, runs_of):
    """The job shapes of `name` (train_eval, sweep_exits), `runs_of(backbone)` giving the (method,
    variant) pairs: one per run, or (group_small_jobs) one per method x backbone over every task of
    the classification grid, or (group_small_jobs: per-task) one per method x backbone x task, so
    that a task added later runs only its own jobs; summarization runs (their own backbones,
    methods and seeds) stay one job each."""
    mode = config["group_small_jobs"]
    if mode is False:
        return [RunJob(name)]
    per_task = mode == "per-task"
    task_sets = [[task] for task in config["tasks"]] if per_task else [config["tasks"]]
    grouped = [
        RunJob(name, method, runs_of(backbone), tasks, [backbone], per_task)
        for backbone in config["backbones"]
        for method in dict.fromkeys(m for m, _ in runs_of(backbone))
        for tasks in task_sets
    ]
    return grouped + ([RunJob(name, tasks=SUMMARY_TASKS, backbones=SUMMARY_BACKBONES)] if name == "train_eval" and SUMMARY_TASKS else [])


def slug(name):
    """A backbone name as part of a rule name (letters, digits, underscores)."""
    return re.sub(r"\W", "_", name)


def fit_hash_jobs():
    """fit_hash's job shapes as (name, (hash, fit) outputs, tasks, backbones), one per hash or
    (group_small_jobs) one per classification task x backbone fitting them all (summarization tasks,
    with their own hash settings, still one per hash)."""
    each = [(W["hash"], W["fit"])]
    if not config["group_small_jobs"]:
        return [("fit_hash", each, None, None)]
    grouped = [(f"fit_hashes_{slug(b)}", hash_fits(b), config["tasks"], [b]) for b in config["backbones"] if hash_fits(b)]
    return grouped + ([("fit_hash", each, SUMMARY_TASKS, SUMMARY_BACKBONES)] if SUMMARY_TASKS else [])


# --- the inference-time comparison (rules in timing.smk) ---


def timed_runs(backbone=None):
    """(method, variant) pairs the inference-time comparison times on `backbone` (or on any;
    timing.smk): the methods the registry marks `timed` (the full model, HashEE, the dynamic methods)."""
    runs = BACKBONE_RUNS[backbone] if backbone else [pair for pairs in BACKBONE_RUNS.values() for pair in pairs]
    return list(dict.fromkeys((m, v) for m, v in runs if get_method(m).timed))


def timing_backbones():
    backbones = config["timing"]["backbones"]
    if backbones is None:
        return list(config["backbones"])
    unknown = [b for b in backbones if b not in config["backbones"]]
    if unknown:
        sys.exit(f"config error: config key 'timing.backbones': {unknown[0]!r} is not one of the config's backbones")
    return list(backbones)


def timing_tasks():
    tasks = config["timing"]["tasks"]
    if tasks is None:
        return list(config["tasks"])
    unknown = [t for t in tasks if t not in config["tasks"]]
    if unknown:
        sys.exit(f"config error: config key 'timing.tasks': {unknown[0]!r} is not one of the config's tasks")
    return list(tasks)


def timing_targets():
    """The timing figure and table, when timing is on and the config runs a full model and something to compare."""
    methods = {m for m, _ in timed_runs()}
    if not config["timing"]["enabled"] or not any(get_method(m).reference for m in methods) or len(timed_runs()) < 2:
        return []
    return ([paths.figure(PRESET, f"inference_time.{ext}") for ext in ("png", "pdf")]
            + [paths.table(PRESET, f"inference_time.{ext}") for ext in ("csv", "md", "tex")])


def timing_cases(wildcards):
    """Per timed (method, variant): the first seed's saved weights (run name -> file: a dynamic
    method's curve may span several runs), its artifacts and (dynamic methods) its matched-point
    file, which says which run and setting are timed."""
    seed = config["seeds"][0]
    cases = []
    for method, variant in dict.fromkeys((m, run_variant(run)) for m, run in timed_runs(wildcards.backbone)):
        dynamic = get_method(method).family == "dynamic"
        runs = curve_runs(wildcards.backbone, method, variant) if dynamic else [variant]
        cases.append({
            "method": method, "variant": variant,
            "checkpoints": {run: paths.checkpoint(PRESET, wildcards.task, wildcards.backbone, method, run, seed) for run in runs},
            "artifacts": {name: artifact_path(wildcards, spec, method)
                          for name, spec in get_method(method).artifacts(variant, seed).items()},
            "matched": paths.matched(PRESET, wildcards.task, wildcards.backbone, method, variant) if dynamic else None,
        })
    return cases


def timing_inputs(wildcards):
    cases = timing_cases(wildcards)
    return {
        "npz": paths.tokenized(PRESET, wildcards.task, wildcards.backbone, "npz"),
        "meta": paths.tokenized(PRESET, wildcards.task, wildcards.backbone, "json"),
        "models": [p for c in cases for p in c["checkpoints"].values()],
        "matched": [c["matched"] for c in cases if c["matched"]],
        "artifacts": sorted({p for c in cases for p in c["artifacts"].values()}),
        "weights": backbone_weights(wildcards),
    }


# --- ConsistentEE for generation (config section llm_generation; rules in llm.smk) ---

from earlyexit.data.llm_tasks import SYNTHETIC_TASKS

LLM = config["llm_generation"]
LLM_TASKS = LLM["tasks"] if LLM["enabled"] else []
LLM_BACKBONES = LLM["backbones"] if LLM["enabled"] else {}
LLM_RUNS = method_variants(LLM["methods"]) if LLM["enabled"] else []
# what every LLM job reads from the section (the grid keys aside): a change reruns them
LLM_SETTINGS = {k: v for k, v in LLM.items() if k not in ("enabled", "tasks", "backbones", "methods", "seeds")}


def llm_gpus(wildcards):
    return gpus_for(config, LLM["device"])


def llm_splits(wildcards):
    return {split: paths.llm_split(PRESET, wildcards.lmtask, split) for split in ("train", "dev", "test")}


def llm_records():
    """Every decoder-LM run record: task x backbone x (method, variant) x seed."""
    return [
        paths.llm_run(PRESET, task, backbone, method, variant, seed)
        for task in LLM_TASKS
        for backbone in LLM_BACKBONES
        for method, variant in LLM_RUNS
        for seed in LLM["seeds"]
    ]


# --- multi-exit pre-training (config section pretraining; rule in pretrain.smk) ---


def elue_scored_files():
    """(task, file) of every dev and test file of the ELUE folder pretraining.corpus.exclude_dir: their
    texts are left out of the corpus (the difficulty files were built from SNLI dev and test pairs)."""
    from pathlib import Path

    from earlyexit.data.tasks import TASKS

    root = config["pretraining"]["corpus"]["exclude_dir"]
    if not PRETRAINED or not root:
        return []
    return [(task, str(Path(root) / task / name)) for task, spec in TASKS.items()
            if not spec.synthetic and spec.kind == "classification"
            for name in ("dev.tsv", "test.tsv", "test_full.tsv") if (Path(root) / task / name).is_file()]


def difficulty_corpus_files():
    """The released difficulty files whose texts join the corpus (pretraining.corpus.difficulty_dir)."""
    from pathlib import Path

    root = config["pretraining"]["corpus"]["difficulty_dir"]
    if not PRETRAINED or not root:
        return []
    return [str(Path(root) / level / f"{split}.txt") for level in ("human", "model") for split in ("train", "test")
            if (Path(root) / level / f"{split}.txt").is_file()]


def scored_tasks():
    """Tasks whose prepared dev and test splits the corpus leaves out: every task the config prepares,
    sorted (a set: the order the tasks are listed in must not re-run the pre-training)."""
    return sorted({*config["tasks"], *CORPUS_TASKS})


def pretraining_inputs(wildcards):
    return {
        "train": [paths.split_file(PRESET, task, "train") for task in CORPUS_TASKS],
        "scored": [paths.split_file(PRESET, task, split) for task in scored_tasks() for split in ("dev", "test")],
        "elue_scored": [path for _, path in elue_scored_files()],
        "difficulty": difficulty_corpus_files(),
    }


def pretraining_settings():
    """The section as earlyexit.training.pretraining.PretrainSettings takes it, without what changes no result."""
    return {k: v for k, v in config["pretraining"].items() if k not in ("corpus", "checkpoint_every_steps")}


def pretrained_targets():
    """Every pre-training record (the runs on those backbones already need their weights)."""
    return [paths.pretrained_record(PRESET, name) for name in PRETRAINED]
