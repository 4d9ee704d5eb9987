import os
import re
import sys

from snakemake.utils import min_version, validate

from earlyexit.plumbing.config_check import config_errors, input_errors
from earlyexit.plumbing import paths
from earlyexit.data.prepare import task_source, task_subsample
from earlyexit.methods import get_method, method_variants
from earlyexit.plumbing.preflight import gpus_for

min_version("9.0")

CONFIG_SCHEMA = "../schemas/config.schema.yaml"

# One-line errors naming the key first (the config, then the local files it names, which would
# otherwise surface as a MissingInputException); then snakemake's validation fills schema defaults.
_errors = config_errors(config, workflow.source_path(CONFIG_SCHEMA)) or input_errors(config)
if _errors:
    sys.exit(f"config error: {_errors[0]}")
validate(config, CONFIG_SCHEMA)

PRESET = config["preset"]
# (method, variant) pairs of the config, from the methods registry (earlyexit/methods/).
RUNS = method_variants(config["methods"])
# Hash functions some run needs (the `hash` artifacts its method declares), fitted by rule fit_hash.
HASHES = sorted(
    {spec["hash"] for method, variant in RUNS for spec in get_method(method).artifacts(variant, 0).values() if spec["kind"] == "hash"}
)
# (hash, fit) of every hash artifact some run declares: fit "train" or "seed<N>".
HASH_FITS = sorted(
    {(spec["hash"], spec["fit"]) for method, variant in RUNS for seed in config["seeds"]
     for spec in get_method(method).artifacts(variant, seed).values() if spec["kind"] == "hash"}
)
# Wildcard placeholders for the path builders of earlyexit.plumbing.paths.
W = {k: f"{{{k}}}" for k in ("task", "backbone", "method", "variant", "seed", "hash", "fit")}


def _alternatives(values):
    return "|".join(map(re.escape, values)) or "(?!)"


wildcard_constraints:
    task=_alternatives(config["tasks"]),
    backbone=_alternatives(config["backbones"]),
    method=_alternatives(dict.fromkeys(m for m, _ in RUNS)),
    variant=_alternatives(dict.fromkeys(v for _, v in RUNS)),
    hash=_alternatives(HASHES),
    fit=r"train|seed\d+",
    seed=r"\d+",


# No onstart GPU/network check: on a cluster the launching host is a login node. Each job checks
# its own node (earlyexit.plumbing.preflight.check_job): GPU where it asked for one (resource gpu),
# the hub where it downloads.


def hash_fit_outputs():
    """fit_hash's (hash, fit) outputs: wildcards, or (group_small_jobs) every fit of a task x backbone."""
    return HASH_FITS if config["group_small_jobs"] else [(W["hash"], W["fit"])]


def keep_or_temp(path):
    """Checkpoints are kept only when training.save_checkpoint asks; else removed once consumed."""
    return path if config["training"]["save_checkpoint"] else temp(path)


def max_seq_len(task):
    training = config["training"]
    return training.get("max_seq_len_per_task", {}).get(task, training["max_seq_len"])


def run_results():
    """Every run record of the config: task x backbone x (method, variant) x seed."""
    return [
        paths.run_record(PRESET, task, backbone, method, variant, seed)
        for task in config["tasks"]
        for backbone in config["backbones"]
        for method, variant in RUNS
        for seed in config["seeds"]
    ]


def dynamic_runs():
    """(method, variant) pairs of the config whose method is dynamic: each run gets a sweep."""
    return [(m, v) for m, v in RUNS if get_method(m).family == "dynamic"]


def sweep_results():
    """Every sweep file of the config: task x backbone x dynamic (method, variant) x seed."""
    return [
        paths.sweep(PRESET, task, backbone, method, variant, seed)
        for task in config["tasks"]
        for backbone in config["backbones"]
        for method, variant in dynamic_runs()
        for seed in config["seeds"]
    ]


def method_settings(method):
    """A dynamic method's own config section (RunContext.settings); {} for the other families."""
    if get_method(method).family != "dynamic":
        return {}
    return dict(config["dynamic"].get(method, {}))


def training_params(wildcards, method):
    """The training section as TrainConfig takes it, with the task's max_seq_len. Without
    checkpoint_every_steps: it changes no result, so changing it must not rerun finished runs
    (train_eval.py reads it from the config)."""
    training = config["training"]
    dropped = ("max_seq_len_per_task", "save_checkpoint", "checkpoint_every_steps")
    kept = {k: v for k, v in training.items() if k not in dropped}
    # a method's own recipe (method_training.<method>) replaces the settings it names
    return {**kept, **config["method_training"].get(method, {}), "max_seq_len": max_seq_len(wildcards.task)}


def analysis_targets():
    """The final tables and figures of the HashEE side (rules in analysis.smk)."""
    return [
        paths.table(PRESET, "runs.csv"),
        *[paths.table(PRESET, f"hash_functions.{ext}") for ext in ("csv", "md", "tex")],
        *[paths.figure(PRESET, f"score_vs_speedup.{ext}") for ext in ("png", "pdf")],
        *dynamic_targets(),
        *timing_targets(),   # the inference-time figure (timing.smk)
    ]


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
    if task_source(config["data"], wildcards.task) != "dir":
        return []
    root = config["data"]["data_dir"]
    return [f"{root}/{wildcards.task}/{name}.tsv" for name in ("train", "dev", "test_full")]


def artifact_path(wildcards, spec, method):
    """The file of one artifact `method` declares (earlyexit.methods.base.Method.artifacts)."""
    if spec["kind"] == "hash":
        return paths.hash_artifact(PRESET, wildcards.task, wildcards.backbone, spec["hash"], spec["fit"], "npz")
    if spec["kind"] == "checkpoint":
        # the selected weights of another run on the same task x backbone (rule train_eval)
        return paths.checkpoint(PRESET, wildcards.task, wildcards.backbone, spec["method"], spec["variant"], spec["seed"])
    raise ValueError(f"method {method}: no rule makes artifacts of kind {spec['kind']!r}")


class RunJob:
    """The runs one job of train_eval or sweep_exits covers, one run (wildcards task,
    backbone, method, variant, seed) or, with group_small_jobs, every variant x seed of one method
    (wildcards task, backbone; named <name>_<method>)."""

    def __init__(self, name, method=None, runs=()):
        self.method = method
        if method is None:
            self.rule = name
            self.pairs = [(W["variant"], W["seed"])]
            self.log = paths.log_file(PRESET, name, W["task"], W["backbone"], W["method"], W["variant"], f"seed{W['seed']}")
        else:
            self.rule = f"{name}_{method}"
            self.pairs = [(v, seed) for m, v in runs if m == method for seed in config["seeds"]]
            self.log = paths.log_file(PRESET, name, W["task"], W["backbone"], method, "all-runs")
        self.size = len(self.pairs)

    def files(self, path_of):
        """One file per run, from a path builder of earlyexit.plumbing.paths (run_record, checkpoint, ...)."""
        method = W["method"] if self.method is None else self.method
        return [path_of(PRESET, W["task"], W["backbone"], method, variant, seed) for variant, seed in self.pairs]

    def runs(self, wildcards):
        """Per run: method, variant, seed and its artifacts (name -> file, as the method declares)."""
        method = self.method or wildcards.method
        pairs = [(wildcards.variant, wildcards.seed)] if self.method is None else self.pairs
        return [
            {"method": method, "variant": variant, "seed": int(seed),
             "artifacts": {name: artifact_path(wildcards, spec, method)
                           for name, spec in get_method(method).artifacts(variant, int(seed)).items()}}
            for variant, seed in pairs
        ]

    def training(self, wildcards):
        return training_params(wildcards, self.method or wildcards.method)

    def settings(self, wildcards):
        return method_settings(self.method or wildcards.method)

    def artifact_inputs(self, wildcards):
        return sorted({path for run in self.runs(wildcards) for path in run["artifacts"].values()})


def run_jobs(name, runs):
    """The job shapes of `name` (train_eval, sweep_exits) over (method, variant) pairs `runs`, one per run or
    (group_small_jobs) one per method."""
    if not config["group_small_jobs"]:
        return [RunJob(name)]
    return [RunJob(name, method, runs) for method in dict.fromkeys(m for m, _ in runs)]
# --- the inference-time comparison (rules in timing.smk) ---


def timed_runs():
    """(method, variant) pairs of the config the inference-time comparison times (timing.smk): the
    full model, HashEE (token-level) and the dynamic methods."""
    return [(m, v) for m, v in RUNS if get_method(m).reference or get_method(m).family in ("token-level", "dynamic")]


def timing_tasks():
    tasks = config["timing"]["tasks"]
    if tasks is None:
        return list(config["tasks"])
    unknown = [t for t in tasks if t not in config["tasks"]]
    if unknown:
        sys.exit(f"config error: config key 'timing.tasks': {unknown[0]!r} is not one of the config's tasks")
    return list(tasks)


def timing_targets():
    """The timing figure, when timing is on and the config runs a full model and something to compare."""
    methods = {m for m, _ in timed_runs()}
    if not config["timing"]["enabled"] or not any(get_method(m).reference for m in methods) or len(timed_runs()) < 2:
        return []
    return [paths.figure(PRESET, f"inference_time.{ext}") for ext in ("png", "pdf")]


def timing_cases(wildcards):
    """Per timed (method, variant): the first seed's saved weights, its artifacts and (dynamic
    methods) its sweep file, whose matched setting is timed."""
    seed = config["seeds"][0]
    cases = []
    for method, variant in timed_runs():
        dynamic = get_method(method).family == "dynamic"
        cases.append({
            "method": method, "variant": variant,
            "checkpoint": paths.checkpoint(PRESET, wildcards.task, wildcards.backbone, method, variant, seed),
            "artifacts": {name: artifact_path(wildcards, spec, method)
                          for name, spec in get_method(method).artifacts(variant, seed).items()},
            "sweep": paths.sweep(PRESET, wildcards.task, wildcards.backbone, method, variant, seed) if dynamic else None,
        })
    return cases


def timing_inputs(wildcards):
    cases = timing_cases(wildcards)
    return {
        "npz": paths.tokenized(PRESET, wildcards.task, wildcards.backbone, "npz"),
        "meta": paths.tokenized(PRESET, wildcards.task, wildcards.backbone, "json"),
        "models": [c["checkpoint"] for c in cases],
        "sweeps": [c["sweep"] for c in cases if c["sweep"]],
        "artifacts": sorted({p for c in cases for p in c["artifacts"].values()}),
    }
