"""The ELUE score (hashee-spec 6.4, baselines-spec 1.4): how far a method's (score, speed-up)
points lie above the ElasticBERT-nL performance-FLOPs curve.

Per task, the reference p_EB is the ElasticBERT-nL curve: the first n layers fine-tuned statically,
one point (test score, FLOPs) per n. A point (p, speed-up s) scores p - p_EB(f) with f = 1/s, its
FLOPs relative to the 12-layer reference model (speed-up = reference FLOPs / FLOPs, and the
reference is the same for every point of a task). p_EB is piecewise linear in FLOPs between adjacent
points ("interpolating", spec [unverified]); outside the curve's range it is extrapolated linearly
from the nearest segment and the point is flagged (the spec's choice for the suite); a curve of one
point is flat and any other FLOPs are flagged. The method's ELUE score is the mean over tasks of its
per-task scores, and undefined ("–") when a task has no score (e.g. a method without regression on
STS-B, baselines-spec 1.2).

Two references are used by the tables: our own n-layer runs (`curve_from_runs`: one backbone's;
`curves_by_backbone`: each backbone's own) and the published ElasticBERT points
(`analysis.published.elasticbert_curve`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from earlyexit.methods import METHODS


@dataclass(frozen=True)
class CurvePoint:
    depth: int
    score: float
    speedup: float


@dataclass(frozen=True)
class Gap:
    """One point against the curve: the curve's value at its FLOPs, the difference, and whether the
    value was extrapolated beyond the curve's range."""

    reference: float
    gap: float
    extrapolated: bool


def reference_at(curve: list[CurvePoint], speedup: float) -> tuple[float, bool]:
    """p_EB at `speedup` (piecewise linear in FLOPs = 1/speed-up) and whether it was extrapolated."""
    if not curve:
        raise ValueError("ELUE score: empty reference curve")
    if not (speedup > 0 and math.isfinite(speedup)):
        raise ValueError(f"ELUE score: speed-up {speedup!r} is not a positive number")
    # average points of equal cost (e.g. two runs of the same depth), then order by FLOPs
    frame = pd.DataFrame({"flops": [1.0 / p.speedup for p in curve], "score": [p.score for p in curve]})
    frame = frame.groupby("flops", as_index=False)["score"].mean().sort_values("flops")
    x, y = frame["flops"].to_numpy(), frame["score"].to_numpy()
    f = 1.0 / speedup
    if len(x) == 1:
        return float(y[0]), not math.isclose(f, x[0], rel_tol=1e-9)
    if x[0] <= f <= x[-1]:
        return float(np.interp(f, x, y)), False
    i = 0 if f < x[0] else len(x) - 2          # the nearest segment
    slope = (y[i + 1] - y[i]) / (x[i + 1] - x[i])
    return float(y[i] + slope * (f - x[i])), True


def gap_to_curve(score: float, speedup: float, curve: list[CurvePoint]) -> Gap:
    reference, extrapolated = reference_at(curve, speedup)
    return Gap(reference=reference, gap=score - reference, extrapolated=extrapolated)


def elue_score(cells: dict, curves: dict, tasks: list[str]) -> tuple[float, list[str]]:
    """Mean over `tasks` of score - p_EB(speed-up); cells: task -> (score, speed-up), curves: task ->
    [CurvePoint]. NaN when a task has no cell, no finite score or no curve. Also returns the tasks
    whose reference was extrapolated."""
    gaps, flagged = [], []
    for task in tasks:
        cell, curve = cells.get(task), curves.get(task)
        if cell is None or not curve or not all(map(math.isfinite, cell)):
            return math.nan, []
        result = gap_to_curve(cell[0], cell[1], curve)
        gaps.append(result.gap)
        if result.extrapolated:
            flagged.append(task)
    return (float(np.mean(gaps)) if gaps else math.nan), flagged


def _family(paper_backbone: str) -> str:
    from earlyexit.methods.truncated import backbone_family

    return backbone_family(paper_backbone)


def curve_from_runs(runs: pd.DataFrame, speedup_column: str, family: str = "ElasticBERT") -> tuple[str | None, dict]:
    """Our ElasticBERT-nL curve per task from runs.csv: the n-layer truncations (the registry's
    `reference_curve` method) of one backbone of `family` (the one with the most of them), plus that
    backbone's full model where no truncation has its depth. Each point: test score and speed-up,
    means over seeds. Returns (the backbone used or None, {task: [CurvePoint]})."""
    static = runs[[_family(b) == family for b in runs["paper_backbone"]]]
    counts = _truncations(static).groupby("backbone")["variant"].nunique()
    if counts.empty:
        return None, {}
    backbone = sorted(counts.index, key=lambda b: (-counts[b], b))[0]
    return backbone, _curve_of(runs, backbone, speedup_column)


def curves_by_backbone(runs: pd.DataFrame, speedup_column: str) -> dict[str, dict]:
    """Each backbone's own n-layer curve, {backbone: {task: [CurvePoint]}}, for every config backbone
    with truncation runs: the reference of a row that ran on that backbone (issue 20: a backbone
    pre-trained here is measured against its own truncations, not another backbone's)."""
    return {backbone: _curve_of(runs, backbone, speedup_column)
            for backbone in sorted(set(_truncations(runs)["backbone"]))}


def _truncations(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["method"].isin([m.name for m in METHODS.values() if m.reference_curve])]


def _curve_of(runs: pd.DataFrame, backbone: str, speedup_column: str) -> dict:
    """{task: [CurvePoint]} from `backbone`'s truncations and, where none has its depth, its full model."""
    mine = runs[runs["backbone"] == backbone]
    points = _truncations(mine)
    full_name = next((m.name for m in METHODS.values() if m.reference), None)
    full = mine[(mine["method"] == full_name) & ~mine["num_layers"].isin(set(points["num_layers"]))]
    curves = {}
    for task, group in pd.concat([points, full]).groupby("task", sort=True):
        curves[task] = [CurvePoint(depth=int(d), score=float(g["test_score"].mean()), speedup=float(g[speedup_column].mean()))
                        for d, g in group.groupby("num_layers", sort=True)]
    return curves
