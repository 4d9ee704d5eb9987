"""Where every artifact lives. The Snakefile (with wildcard placeholders such as "{task}") and the
snakemake-free grid runner (with concrete names) both build their paths here, so they agree."""

from __future__ import annotations

def split_file(preset, task, split) -> str:
    return f"resources/{preset}/data/{task}/{split}.tsv"


def data_summary(preset, task) -> str:
    return f"resources/{preset}/data/{task}/summary.json"


def tokenized(preset, task, backbone, ext) -> str:
    return f"results/{preset}/tokenized/{task}/{backbone}.{ext}"


def hash_artifact(preset, task, backbone, hash_name, variant, ext) -> str:
    return f"results/{preset}/hashes/{task}/{backbone}/{hash_name}/{variant}.{ext}"


def run_record(preset, task, backbone, method, seed) -> str:
    return f"results/{preset}/runs/{task}/{backbone}/{method}/seed{seed}.json"


def checkpoint(preset, task, backbone, method, seed) -> str:
    return f"results/{preset}/checkpoints/{task}/{backbone}/{method}/seed{seed}.pt"


def table(preset, name) -> str:
    return f"results/{preset}/tables/{name}"


def figure(preset, name) -> str:
    return f"figures/{preset}/{name}"


def log_file(preset, rule, *parts) -> str:
    return "/".join([f"logs/{preset}/{rule}", *map(str, parts)]) + ".log"
