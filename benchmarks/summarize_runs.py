"""Repeated bench_inference.py runs as a verdict: per dtype and code version, every run's efficiency
against plain HF, their median, how many reach the target, and a one-sided sign test.

    python benchmarks/summarize_runs.py benchmarks/results/cpu-2thread-minilm-sst2-b32-ab-1305 \
        --target float32=0.9 bfloat16=0.8

The folder holds one bench_inference.py JSON per run, named `<dtype>-<version>-<run>.json`
(dtype `fp32` or `bf16`; version e.g. `base` or `new`; runs of different versions alternate, so a
run number pairs them). One run is one process: its passes share that process's state (memory
layout, thread placement), which moves from run to run more than passes move within one, so the
verdict counts runs, not passes. The sign test's p-value is the chance of at least that many runs
reaching the target if the median run sat just below it (binomial, p = 1/2); with two versions,
the paired count is how many run numbers have the second version faster.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

NAME = re.compile(r"^(fp32|bf16)-([A-Za-z0-9_]+)-(\d+)\.json$")
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def sign_test_p(successes: int, n: int) -> float:
    """P(X >= successes), X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, k) for k in range(successes, n + 1)) / 2 ** n


def load_runs(folder: Path) -> dict:
    """(dtype, version) -> {run number: the batch's row}; a JSON with more than one row or a name
    off the pattern is an error naming the file."""
    runs: dict = {}
    for path in sorted(folder.glob("*.json")):
        match = NAME.match(path.name)
        if match is None:
            sys.exit(f"{path}: name is not <fp32|bf16>-<version>-<run>.json")
        rows = json.loads(path.read_text())["rows"]
        if len(rows) != 1:
            sys.exit(f"{path}: {len(rows)} rows; one batch size per run expected")
        dtype, version, run = DTYPES[match[1]], match[2], int(match[3])
        runs.setdefault((dtype, version), {})[run] = rows[0]
    if not runs:
        sys.exit(f"{folder}: no run files")
    return runs


def summarize(runs: dict, targets: dict) -> list[str]:
    lines = []
    for (dtype, version), by_run in sorted(runs.items()):
        eff = np.array([by_run[r]["efficiency"] for r in sorted(by_run)])
        line = (f"{dtype} {version}: {len(eff)} runs, efficiency {' '.join(f'{e:.3f}' for e in eff)}; "
                f"median {np.median(eff):.3f}")
        if dtype in targets:
            reached = int((eff >= targets[dtype]).sum())
            line += (f"; {reached}/{len(eff)} runs >= {targets[dtype]} "
                     f"(sign test p = {sign_test_p(reached, len(eff)):.3f})")
        lines.append(line)
    for dtype in sorted({d for d, _ in runs}):
        versions = sorted(v for d, v in runs if d == dtype)
        for first, second in zip(versions, versions[1:]):
            a, b = runs[(dtype, first)], runs[(dtype, second)]
            paired = sorted(set(a) & set(b))
            faster = sum(b[r]["hashee_seconds"] < a[r]["hashee_seconds"] for r in paired)
            ratio = np.median([b[r]["hashee_seconds"] / a[r]["hashee_seconds"] for r in paired])
            lines.append(f"{dtype} {second} vs {first}: HashEE faster in {faster}/{len(paired)} paired runs "
                         f"(sign test p = {sign_test_p(faster, len(paired)):.3f}), median time ratio {ratio:.3f}")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path)
    p.add_argument("--target", nargs="*", default=[], help="dtype=efficiency, e.g. float32=0.9")
    args = p.parse_args(argv)
    targets = {}
    for item in args.target:
        dtype, _, value = item.partition("=")
        if dtype not in DTYPES.values() or not value:
            sys.exit(f"--target {item}: expected float32=<x> or bfloat16=<x>")
        targets[dtype] = float(value)
    print("\n".join(summarize(load_runs(args.folder), targets)))


if __name__ == "__main__":
    main()
