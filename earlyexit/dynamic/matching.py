"""The matched operating point of a dynamic curve (baselines-spec 1.1; issue 16 sections 1 and 4).

A curve is every run of one (task, backbone, method, variant): for a method with a training-time
sweep (Method.train_sweep, e.g. ConsistentEE's alpha) several trained runs, each swept at inference
(earlyexit/dynamic/sweeps.py). Per seed, the matched point is the point of ANY of the curve's runs whose DEV
exact-FLOPs speed-up against the backbone family's reference depth (the paper's convention, the
main table's) is closest to the target: the published speed-up of (paper task, the method's
elue_main row) when data/published has one (for a synthetic task: its paper task's, used only as
the target, never shown beside it), else `dynamic.target_speedup`. Ties: the better dev score,
then the earlier run (grid order), then the earlier setting.

Cheap and local (rule match_operating_points): the GPU sweeps hold points only, so editing a
published number reruns this step and the tables, never a sweep.
"""

from __future__ import annotations

import math

import numpy as np

from earlyexit.methods.base import setting_label

PUBLISHED_TABLE = "elue_main"
MATCHED_ON = "dev exact FLOPs speed-up against the reference depth (ratio of sums)"


def published_target(published, paper_task: str, row: str) -> float | None:
    """The published ELUE speed-up of `row` on `paper_task` (table elue_main, metric score), or None.
    `published`: analysis.published.load_published's frame (or None)."""
    if published is None:
        return None
    hits = published[(published["table"] == PUBLISHED_TABLE) & (published["row"] == row)
                     & (published["task"] == paper_task) & (published["metric"] == "score")]["speedup"].dropna()
    values = sorted(set(hits))
    if len(values) > 1:
        raise ValueError(f"published {PUBLISHED_TABLE} row {row!r} on {paper_task}: several speed-ups {values}")
    return float(values[0]) if values else None


def matched_index(dev_speedups, dev_scores, target: float) -> int:
    """Index of the point whose dev speed-up is closest to `target` (ties: higher dev score, then
    the earlier point)."""
    if len(dev_speedups) == 0:
        raise ValueError("no sweep point to match")
    # distances rounded so that equal distances up to float noise count as ties
    keys = [(round(abs(float(s) - target), 9), -float(score) if np.isfinite(score) else math.inf, i)
            for i, (s, score) in enumerate(zip(dev_speedups, dev_scores))]
    return min(keys)[2]


def curve_target(method, variant: str, task, paper_backbone: str, published, default_target: float) -> dict:
    """{"speedup", "source"}: what the curve is matched to (see the module docstring)."""
    row = method.published_row(PUBLISHED_TABLE, variant, paper_backbone)
    value = published_target(published, task.paper_task, row)
    if value is not None:
        return {"speedup": value, "source": f"published {PUBLISHED_TABLE} {row} on {task.paper_task}"}
    return {"speedup": float(default_target), "source": "config dynamic.target_speedup (nothing published)"}


def match_curve(sweeps: list[tuple[str, dict]], target: float) -> list[dict]:
    """Per seed (ascending), the matched point among every point of every run of the curve.
    `sweeps`: (path, sweep file content) of one curve, runs in grid order. A seed whose runs are all
    unsupported (or hold no point) gets `matched` None and the reason."""
    by_seed: dict[int, list] = {}
    for path, sweep in sweeps:
        by_seed.setdefault(int(sweep["seed"]), []).append((path, sweep))
    out = []
    for seed in sorted(by_seed):
        candidates = [(path, sweep, i, point) for path, sweep in by_seed[seed] for i, point in enumerate(sweep["points"])]
        runs = [sweep["run"] for _, sweep in by_seed[seed]]
        if not candidates:
            reasons = sorted({sweep["unsupported"] or "the sweep has no point" for _, sweep in by_seed[seed]})
            out.append({"seed": seed, "runs": runs, "matched": None, "unsupported": "; ".join(reasons)})
            continue
        best = matched_index([c[3]["dev_speedup"]["flops"] for c in candidates],
                             [c[3]["dev"]["score"] for c in candidates], target)
        path, sweep, index, point = candidates[best]
        out.append({"seed": seed, "runs": runs, "unsupported": None, "matched": {
            "run": sweep["run"], "train_setting": sweep["train_setting"], "sweep": path, "index": index,
            "label": point["label"], "setting": point["setting"],
            "operating_point": operating_point(sweep["train_setting"], point["setting"]),
            "dev_flops_speedup": point["dev_speedup"]["flops"], "dev_score": point["dev"]["score"]}})
    return out


def operating_point(train_setting: dict, setting: dict) -> str:
    """A curve point's name: the training-time setting, then the inference-time one
    ("alpha=0.02,policy_threshold=0.5")."""
    return setting_label({**train_setting, **setting})


def match_file(*, sweep_paths: list[str], published, default_target: float, out_json) -> dict:
    """Read one curve's sweep files, pick each seed's matched point and write the matched file
    (schema workflow/schemas/matched.schema.yaml)."""
    from earlyexit.data.tasks import get_task
    from earlyexit.methods import get_method
    from earlyexit.plumbing.files import atomic_write_json
    from earlyexit.dynamic.sweeps import read_sweep

    if not sweep_paths:
        raise ValueError(f"{out_json}: a curve needs at least one sweep file")
    sweeps = [(str(p), read_sweep(p)) for p in sweep_paths]
    first = sweeps[0][1]
    identity = {k: first[k] for k in ("preset", "task", "paper_task", "backbone", "paper_backbone", "method", "variant",
                                      "label")}
    for path, sweep in sweeps:
        other = {k: sweep[k] for k in identity}
        if other != identity:
            raise ValueError(f"{path}: not the same curve as {sweeps[0][0]} ({other} vs {identity})")
    target = curve_target(get_method(first["method"]), first["variant"], get_task(first["task"]),
                          first["paper_backbone"], published, default_target)
    content = {**identity, "target": {**target, "matched_on": MATCHED_ON},
               "seeds": match_curve(sweeps, target["speedup"])}
    atomic_write_json(out_json, content)
    return content


def read_matched(path) -> dict:
    """A matched file, checked against workflow/schemas/matched.schema.yaml; ValueError naming the file."""
    from earlyexit.plumbing.records import SCHEMAS, read_checked_json

    return read_checked_json(path, SCHEMAS / "matched.schema.yaml", "matched-point file")


def matched_of(matched_files: list[dict]) -> dict:
    """(task, backbone, method, variant, seed) -> the seed's entry (its `matched` may be None)."""
    return {(m["task"], m["backbone"], m["method"], m["variant"], entry["seed"]): entry
            for m in matched_files for entry in m["seeds"]}
