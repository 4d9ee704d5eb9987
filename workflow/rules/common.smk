import os
import re
import sys

from snakemake.utils import min_version, validate

from earlyexit.plumbing.config_check import config_errors, input_errors
from earlyexit.plumbing import paths
from earlyexit.data.prepare import task_source
from earlyexit.data.tasks import get_task
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
# Wildcard placeholders for the path builders of earlyexit.plumbing.paths.
W = {k: f"{{{k}}}" for k in ("task", "backbone", "method", "variant", "seed", "hash", "fit")}


def _alternatives(values):
    return "|".join(map(re.escape, values)) or "(?!)"


wildcard_constraints:
    task=_alternatives([*config["tasks"], *SUMMARY_TASKS]),
    backbone=_alternatives([*config["backbones"], *SUMMARY_BACKBONES]),
    method=_alternatives(dict.fromkeys(m for m, _ in RUNS + SUMMARY_RUNS)),
    variant=_alternatives(dict.fromkeys(v for _, v in RUNS + SUMMARY_RUNS)),
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
    """A backbone's config entry: the classification backbones, then the summarization ones."""
    return config["backbones"][name] if name in config["backbones"] else SUMMARY_BACKBONES[name]


def max_seq_len(task):
    if is_summarization(task):
        return SUMMARIZATION["max_source_len"]
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


def training_params(wildcards):
    """The training section as TrainConfig takes it, with the task's max_seq_len. Without
    checkpoint_every_steps: it changes no result, so changing it must not rerun finished runs
    (train_eval.py reads it from the config)."""
    training = SUMMARIZATION["training"] if is_summarization(wildcards.task) else config["training"]
    dropped = ("max_seq_len_per_task", "save_checkpoint", "checkpoint_every_steps")
    kept = {k: v for k, v in training.items() if k not in dropped}
    return {**kept, "max_seq_len": max_seq_len(wildcards.task)}


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
        *paths.summarization_targets(PRESET, SUMMARIZATION["enabled"]),
    ]


def elue_files(wildcards):
    """For a task whose source is dir, the local ELUE files are inputs, so editing them re-runs it."""
    if is_summarization(wildcards.task) or task_source(config["data"], wildcards.task) != "dir":
        return []
    root = config["data"]["data_dir"]
    return [f"{root}/{wildcards.task}/{name}.tsv" for name in ("train", "dev", "test_full")]


def artifact_path(wildcards, spec):
    """The file of one artifact a method declares (earlyexit.methods.base.Method.artifacts)."""
    if spec["kind"] == "hash":
        return paths.hash_artifact(PRESET, wildcards.task, wildcards.backbone, spec["hash"], spec["fit"], "npz")
    if spec["kind"] == "checkpoint":
        # the selected weights of another run on the same task x backbone (rule train_eval)
        return paths.checkpoint(PRESET, wildcards.task, wildcards.backbone, spec["method"], spec["variant"], spec["seed"])
    raise ValueError(f"method {wildcards.method}: no rule makes artifacts of kind {spec['kind']!r}")


def run_artifacts(wildcards):
    """The artifacts a run needs, named as the method declares them (e.g. hash)."""
    declared = get_method(wildcards.method).artifacts(wildcards.variant, int(wildcards.seed))
    return {name: artifact_path(wildcards, spec) for name, spec in declared.items()}


def run_inputs(wildcards):
    return {
        "npz": paths.tokenized(PRESET, wildcards.task, wildcards.backbone, "npz"),
        "meta": paths.tokenized(PRESET, wildcards.task, wildcards.backbone, "json"),
        **run_artifacts(wildcards),
    }
