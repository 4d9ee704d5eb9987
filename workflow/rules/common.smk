import os
import re
import sys

from snakemake.utils import min_version, validate

from earlyexit.plumbing.config_check import config_errors, input_errors
from earlyexit.plumbing import paths
from earlyexit.data.prepare import task_source
from earlyexit.methods import backbone_runs, get_method, method_variants
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


def keep_or_temp(path):
    """Checkpoints are kept only when training.save_checkpoint asks; else removed once consumed."""
    return path if config["training"]["save_checkpoint"] else temp(path)


def max_seq_len(task):
    training = config["training"]
    return training.get("max_seq_len_per_task", {}).get(task, training["max_seq_len"])


def run_results():
    """Every run record of the config: task x backbone x (method, variant) x seed, the pairs each
    backbone runs (earlyexit.methods.backbone_runs)."""
    return [
        paths.run_record(PRESET, task, backbone, method, variant, seed)
        for task in config["tasks"]
        for backbone in config["backbones"]
        for method, variant in backbone_runs(config, backbone)
        for seed in config["seeds"]
    ]


def training_params(wildcards):
    """The training section as TrainConfig takes it, with the task's max_seq_len. Without
    checkpoint_every_steps: it changes no result, so changing it must not rerun finished runs
    (train_eval.py reads it from the config)."""
    training = config["training"]
    dropped = ("max_seq_len_per_task", "save_checkpoint", "checkpoint_every_steps")
    kept = {k: v for k, v in training.items() if k not in dropped}
    return {**kept, "max_seq_len": max_seq_len(wildcards.task)}


def analysis_targets():
    """The final tables and figures of the HashEE side (rules in analysis.smk)."""
    return [
        paths.table(PRESET, "runs.csv"),
        *[paths.table(PRESET, f"hash_functions.{ext}") for ext in ("csv", "md", "tex")],
        *[paths.figure(PRESET, f"score_vs_speedup.{ext}") for ext in ("png", "pdf")],
        *[paths.table(PRESET, f"elue_main.{ext}") for ext in ("csv", "md", "tex")],
        *[paths.figure(PRESET, f"backbone_effect.{ext}") for ext in ("png", "pdf")],
    ]


def elue_files(wildcards):
    """For a task whose source is dir, the local ELUE files are inputs, so editing them re-runs it."""
    if task_source(config["data"], wildcards.task) != "dir":
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
