import os
import re
import sys

from snakemake.utils import min_version, validate

from earlyexit.config_check import config_errors
from earlyexit import layout
from earlyexit.data.prepare import task_source
from earlyexit.hashing import HASH_NAMES
from earlyexit.preflight import preflight_errors

min_version("9.0")

CONFIG_SCHEMA = "../schemas/config.schema.yaml"

# One-line errors naming the key first; then snakemake's own validation fills schema defaults.
_errors = config_errors(config, workflow.source_path(CONFIG_SCHEMA))
if _errors:
    sys.exit(f"config error: {_errors[0]}")
validate(config, CONFIG_SCHEMA)

PRESET = config["preset"]
HASHES = [m for m in config["methods"] if m in HASH_NAMES]
# Wildcard placeholders for the path builders of earlyexit.layout.
W = {k: f"{{{k}}}" for k in ("task", "backbone", "method", "seed", "hash", "variant")}


def _alternatives(values):
    return "|".join(map(re.escape, values)) or "(?!)"


wildcard_constraints:
    task=_alternatives(config["tasks"]),
    backbone=_alternatives(config["backbones"]),
    method=_alternatives(config["methods"]),
    hash=_alternatives(HASHES),
    variant=r"train|seed\d+",
    seed=r"\d+",


onstart:
    problems = preflight_errors(config.get("requirements", {}))
    if problems:
        sys.exit(f"preflight: {problems[0]}")


def max_seq_len(task):
    training = config["training"]
    return training.get("max_seq_len_per_task", {}).get(task, training["max_seq_len"])


def run_results():
    return expand(
        layout.run_record(PRESET, W["task"], W["backbone"], W["method"], W["seed"]),
        task=config["tasks"],
        backbone=list(config["backbones"]),
        method=config["methods"],
        seed=config["seeds"],
    )


def final_targets():
    return [
        layout.table(PRESET, "runs.csv"),
        *[layout.table(PRESET, f"hash_functions.{ext}") for ext in ("csv", "md", "tex")],
        *[layout.figure(PRESET, f"score_vs_speedup.{ext}") for ext in ("png", "pdf")],
    ]


def elue_files(wildcards):
    """For a task whose source is dir, the local ELUE files are inputs, so editing them re-runs it."""
    if task_source(config["data"], wildcards.task) != "dir":
        return []
    root = config["data"]["data_dir"]
    return [f"{root}/{wildcards.task}/{name}.tsv" for name in ("train", "dev", "test_full")]


def run_inputs(wildcards):
    w = wildcards
    inputs = {
        "npz": layout.tokenized(PRESET, w.task, w.backbone, "npz"),
        "meta": layout.tokenized(PRESET, w.task, w.backbone, "json"),
    }
    if w.method != "full":
        variant = layout.hash_variant(w.method, w.seed)
        inputs["hash"] = layout.hash_artifact(PRESET, w.task, w.backbone, w.method, variant, "npz")
    return inputs
