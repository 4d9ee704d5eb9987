"""Train once, sweep at inference (baselines-spec 1.3-1.4): score a dynamic method's saved
checkpoint at every value of its sweep on dev and test, and pick the matched operating point.
Every layer runs once per split; each setting's exits are replayed on those outputs, which equals
real early exit (earlyexit.models.multi_exit.replay_exit; tests/test_replay_sweeps.py).

One sweep file per run (results/<preset>/sweeps/<task>/<backbone>/<method>/<variant>/seed<N>.json,
schema workflow/schemas/sweep.schema.yaml) holds, per setting: dev/test metrics; the ELUE FLOPs
speed-up (ratio of sums) on dev and test in both conventions (against the backbone family's
reference depth, and `*_vs_own_full`), exact and ELUE-protocol, as run records give them
(earlyexit.flops.speedup_record); the layer-based speed-up, labelled as such (reference depth x N /
sum of exit layers: what CascadeBERT and ElasticBERT print); the mean exit layer and the exit-layer
histogram; and per test instance its exit layer and prediction (its length once, in `test_tokens`,
and its gold answer once, in `test_labels`: the claims ledger's paired bootstrap).

The matched point: the setting whose DEV ELUE speed-up (against the reference depth, the paper's
convention) is closest to a target: the published speed-up of (paper task, the method's elue_main
row) when data/published has one (for a synthetic task: its paper task's, used only as the target,
never shown beside it), else `dynamic.target_speedup`. Ties: the better dev score, then the
earlier setting.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from earlyexit.flops import speedup_record
from earlyexit.instances import compact, kind_of
from earlyexit.methods.base import SweepPoint, setting_label

log = logging.getLogger("earlyexit.sweeps")
PUBLISHED_TABLE = "elue_main"


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


def histogram(exit_layers: np.ndarray, num_layers: int) -> list[int]:
    """Instances answered at layer 1..L (up to the most layers paid, where a cascade counts both of
    its models: CascadeBERT's 2 + L)."""
    exit_layers = np.asarray(exit_layers, dtype=np.int64)
    top = max(num_layers, int(exit_layers.max()) if len(exit_layers) else 0)
    return np.bincount(exit_layers, minlength=top + 1)[1:top + 1].tolist()


def layer_speedups(exit_layers: np.ndarray, num_layers: int, reference_layers: int) -> dict:
    total = float(np.sum(exit_layers))
    return {"convention": "layer counts, not FLOPs: depth x N / sum of exit layers (as CascadeBERT and "
                          "ElasticBERT print; every instance weighs the same whatever its length)",
            "vs_reference": reference_layers * len(exit_layers) / total,
            "vs_own_full": num_layers * len(exit_layers) / total}


def point_record(point: SweepPoint, reference_layers: int, kind: str = "label") -> dict:
    """One setting of the sweep file (without the per-instance arrays' lengths); `kind`: the task's
    outcome kind (earlyexit/instances.py), how the per-instance predictions are stored."""
    num_layers = point.dims.num_layers
    out = {"setting": point.setting, "label": setting_label(point.setting), "dev": point.dev, "test": point.test}
    for split, cost, exits in (("dev", point.dev_cost, point.dev_exit_layers),
                               ("test", point.test_cost, point.test_exit_layers)):
        record = speedup_record(cost.tokens, cost.method_flops, cost.elue_depth, point.dims, reference_layers)
        speed = record["speedup"]
        out[f"{split}_speedup"] = {k: speed[k] for k in ("flops", "elue", "flops_vs_own_full", "elue_vs_own_full")}
        out[f"{split}_layer_speedup"] = layer_speedups(exits, num_layers, reference_layers)
        out[f"{split}_mean_exit_layer"] = float(np.mean(exits))
        out[f"{split}_exit_histogram"] = histogram(exits, num_layers)
        out[f"{split}_flops_per_instance"] = record["flops"]["method_per_instance"]
    out["test_exit_layers"] = np.asarray(point.test_exit_layers, dtype=np.int64).tolist()
    if point.test_predictions is not None:   # the claims ledger's paired bootstrap (gold: the file's test_labels)
        out["test_predictions"] = compact(point.test_predictions, kind)
    out["extra"] = point.extra
    return out


def sweep_file(*, run: dict, points: list[SweepPoint], reference_layers: int, target: float, target_source: str,
               test_tokens, unsupported: str | None, num_layers: int, seconds: float, test_labels=None,
               kind: str = "label") -> dict:
    """The sweep file's content; `run` holds the identity fields (preset, task, ..., seed);
    `test_labels`: the gold answers per test instance (kept once, beside the points' predictions)."""
    records = [point_record(p, reference_layers, kind) for p in points]
    matched = None
    if records:
        index = matched_index([r["dev_speedup"]["elue"] for r in records], [r["dev"]["score"] for r in records], target)
        matched = {"index": index, "label": records[index]["label"], "setting": records[index]["setting"]}
    return {
        **run,
        "num_layers": num_layers,
        "reference_layers": reference_layers,
        "speedup_convention": f"FLOPs of the {reference_layers}-layer reference model of the backbone family / "
                              "FLOPs of the setting, summed over the split (ratio of sums; exact matmul count and "
                              "the ELUE protocol's counter); *_vs_own_full: against this backbone's own "
                              f"{num_layers}-layer full model",
        "supported": unsupported is None,
        "unsupported": unsupported,
        "target": {"speedup": target, "source": target_source,
                   "matched_on": "dev ELUE speed-up against the reference depth"},
        "matched": matched,
        "test_tokens": np.asarray(test_tokens, dtype=np.int64).tolist(),
        **({"test_labels": compact(test_labels, kind), "outcome_kind": kind} if test_labels is not None else {}),
        "points": records,
        "seconds": seconds,
    }


def run_sweep(*, preset: str, task_name: str, tokenized, tokenized_meta, backbone, method: str, variant: str,
              seed: int, checkpoint, train_config, reference_layers: int, default_target: float, published=None,
              out_json, device: str | None = None, method_settings: dict | None = None) -> dict:
    """Score the run's checkpoint at every sweep setting of `method` and write the sweep file.

    `published`: the published numbers (analysis.published.load_published) or None;
    `default_target`: `dynamic.target_speedup`, the target where nothing is published."""
    from earlyexit.data.tasks import get_task
    from earlyexit.encoded import load_encoded
    from earlyexit.methods import RunContext, get_method
    from earlyexit.plumbing.files import atomic_write_json, read_json
    from earlyexit.plumbing.torch_setup import pick_device, set_seed

    started = time.perf_counter()
    set_seed(seed)
    chosen = get_method(method)
    if chosen.family != "dynamic":
        raise ValueError(f"method {method!r} is not dynamic (family {chosen.family}): it has no exit sweep")
    task = get_task(task_name)
    meta = read_json(tokenized_meta)
    splits = load_encoded(tokenized)
    ctx = RunContext(task=task, backbone=backbone, variant=variant, seed=seed, splits=splits, meta=meta, artifacts={},
                     train_config=train_config, device=pick_device(device), checkpoint=None, progress=False,
                     settings=dict(method_settings or {}))
    row = chosen.published_row(PUBLISHED_TABLE, variant, backbone.paper_backbone or backbone.name)
    published_speedup = published_target(published, task.paper_task, row)
    if published_speedup is not None:
        target, source = published_speedup, f"published {PUBLISHED_TABLE} {row} on {task.paper_task}"
    else:
        target, source = float(default_target), "config dynamic.target_speedup (nothing published)"
    unsupported = chosen.exit_support(task)
    points = [] if unsupported else chosen.score_sweep(ctx, str(checkpoint), chosen.sweep_settings(task))
    num_layers = points[0].dims.num_layers if points else int(meta["num_layers"])
    content = sweep_file(
        run={"preset": preset, "task": task_name, "paper_task": task.paper_task, "synthetic": task.synthetic,
             "backbone": backbone.name, "paper_backbone": backbone.paper_backbone or backbone.name,
             "method": method, "variant": variant, "label": chosen.label(variant), "seed": seed,
             "metric": task.metric, "checkpoint": str(checkpoint)},
        points=points, reference_layers=reference_layers, target=target, target_source=source,
        test_tokens=splits["test"].lengths, unsupported=unsupported, num_layers=num_layers,
        seconds=time.perf_counter() - started, test_labels=splits["test"].labels, kind=kind_of(task))
    atomic_write_json(out_json, content)
    if content["matched"]:
        point = content["points"][content["matched"]["index"]]
        log.info("%s %s %s seed %d: matched %s (target %.2fx, %s): test %.2f at %.2fx ELUE", task_name, backbone.name,
                 method, seed, point["label"], target, source, point["test"]["score"], point["test_speedup"]["elue"])
    else:
        log.info("%s %s %s seed %d: no sweep (%s)", task_name, backbone.name, method, seed, unsupported)
    return content


def read_sweep(path) -> dict:
    """A sweep file, checked against workflow/schemas/sweep.schema.yaml; ValueError naming the file."""
    from earlyexit.plumbing.records import SCHEMAS, read_checked_json

    return read_checked_json(path, SCHEMAS / "sweep.schema.yaml", "sweep file")
