"""Where every artifact of the HashEE side of the DAG lives: the rule files build their paths here
(with wildcard placeholders such as "{task}", or concrete names for targets)."""

from __future__ import annotations

def split_file(preset, task, split) -> str:
    return f"resources/{preset}/data/{task}/{split}.tsv"


def data_summary(preset, task) -> str:
    return f"resources/{preset}/data/{task}/summary.json"


def tokenized(preset, task, backbone, ext) -> str:
    return f"results/{preset}/tokenized/{task}/{backbone}.{ext}"


def hash_artifact(preset, task, backbone, hash_name, fit, ext) -> str:
    """fit: "train" (fitted once on the training split) or "seed<N>" (seed-dependent hashes)."""
    return f"results/{preset}/hashes/{task}/{backbone}/{hash_name}/{fit}.{ext}"


def run_record(preset, task, backbone, method, variant, seed) -> str:
    return f"results/{preset}/runs/{task}/{backbone}/{method}/{variant}/seed{seed}.json"


def checkpoint(preset, task, backbone, method, variant, seed) -> str:
    return f"results/{preset}/checkpoints/{task}/{backbone}/{method}/{variant}/seed{seed}.pt"


def table(preset, name) -> str:
    return f"results/{preset}/tables/{name}"


def figure(preset, name) -> str:
    return f"figures/{preset}/{name}"


def log_file(preset, rule, *parts) -> str:
    return "/".join([f"logs/{preset}/{rule}", *map(str, parts)]) + ".log"
