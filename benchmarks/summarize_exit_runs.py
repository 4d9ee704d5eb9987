"""Repeated bench_exit_overhead.py runs as a verdict: per method, batch size and case, every run's
ratio (reference seconds / seconds), their median, how many runs reach the target and a one-sided
sign test each way.

    python benchmarks/summarize_exit_runs.py benchmarks/results/cpu-2thread-minilm-sst2-exit-b1-runs-1540 \
        --target 0.9

The folder holds one bench_exit_overhead.py JSON per run (one process each: a run's passes share
that process's state, which moves from run to run more than passes move within one, so the verdict
counts runs, not passes). Verdict per row: `met` when the runs at or above the target are
significant (sign test p <= --alpha, i.e. the median run is above it), `missed` when the runs
below it are, else `undecided` (more runs would tell). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from summarize_runs import sign_test_p  # noqa: E402

KEY = ("method", "batch_size", "case")


def run_order(path: Path) -> list:
    """Sort key: the file name with its numbers as numbers (run-2 before run-10)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def load_ratios(folder: Path) -> dict:
    """(method, batch size, case) -> [ratio of each run, in run order (`run_order`)]; a file
    without bench_exit_overhead.py's rows is an error naming it."""
    ratios: dict = {}
    paths = sorted(folder.glob("*.json"), key=run_order)
    if not paths:
        sys.exit(f"{folder}: no run files")
    for path in paths:
        try:
            rows = json.loads(path.read_text())["rows"]
            for row in rows:
                ratios.setdefault(tuple(row[k] for k in KEY), []).append(float(row["ratio"]))
        except (ValueError, KeyError, TypeError) as error:
            sys.exit(f"{path}: not a bench_exit_overhead.py result ({error!r})")
    return ratios


def verdict(ratios: list[float], target: float, alpha: float) -> tuple[int, float, float, str]:
    """(runs >= target, p of that many or more, p of that many or fewer, verdict)."""
    n, reached = len(ratios), sum(r >= target for r in ratios)
    p_met, p_missed = sign_test_p(reached, n), sign_test_p(n - reached, n)
    return reached, p_met, p_missed, "met" if p_met <= alpha else "missed" if p_missed <= alpha else "undecided"


def summarize(ratios: dict, target: float, alpha: float) -> list[str]:
    lines = [f"| method | batch | case | ratio per run | median | runs >= {target} | sign test p (met / missed) | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for (method, batch, case), values in sorted(ratios.items()):
        reached, p_met, p_missed, decided = verdict(values, target, alpha)
        lines.append(f"| {method} | {batch} | {case} | {' '.join(f'{v:.3f}' for v in values)} | "
                     f"{np.median(values):.3f} | {reached}/{len(values)} | {p_met:.3f} / {p_missed:.3f} | {decided} |")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path)
    p.add_argument("--target", type=float, default=0.9, help="ratio every row should reach (issue 18: 0.9)")
    p.add_argument("--alpha", type=float, default=0.05, help="sign-test level of a verdict")
    args = p.parse_args(argv)
    print("\n".join(summarize(load_ratios(args.folder), args.target, args.alpha)))


if __name__ == "__main__":
    main()
