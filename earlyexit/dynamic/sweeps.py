"""Train once, sweep at inference (baselines-spec 1.3-1.4): score a dynamic method's saved
checkpoint at every value of its sweep on dev and test.
Every layer runs once per split; each setting's exits are replayed on those outputs, which equals
real early exit (earlyexit.models.multi_exit.replay_exit; tests/test_replay_sweeps.py).

One sweep file per run (results/<preset>/sweeps/<task>/<backbone>/<method>/<run>/seed<N>.json, the run
being the variant or, for a training-time sweep, "<variant>@<parameter>=<value>";
schema workflow/schemas/sweep.schema.yaml) holds, per setting: dev/test metrics; the ELUE FLOPs
speed-up (ratio of sums) on dev and test in both conventions (against the backbone family's
reference depth, and `*_vs_own_full`), exact and ELUE-protocol, as run records give them
(earlyexit.cost.flops.speedup_record); the layer-based speed-up, labelled as such (reference depth x N /
sum of exit layers: what CascadeBERT and ElasticBERT print); the mean exit layer and the exit-layer
histogram; and per test instance its exit layer and prediction (its length once, in `test_tokens`,
and its gold answer once, in `test_labels`: the claims ledger's paired bootstrap).

The file holds points only: the matched operating point is picked afterwards, across every run and
point of a curve, by a cheap local rule (earlyexit/dynamic/matching.py), so that editing a published number
reruns no sweep.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from earlyexit.cost.flops import speedup_record
from earlyexit.runs.instances import compact, kind_of
from earlyexit.methods.base import SweepPoint, setting_label

log = logging.getLogger("earlyexit.dynamic.sweeps")


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
    outcome kind (earlyexit/runs/instances.py), how the per-instance predictions are stored."""
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


def sweep_file(*, run: dict, points: list[SweepPoint], reference_layers: int, test_tokens, unsupported: str | None,
               num_layers: int, seconds: float, test_labels=None, kind: str = "label") -> dict:
    """The sweep file's content; `run` holds the identity fields (preset, task, ..., seed, run);
    `test_labels`: the gold answers per test instance (kept once, beside the points' predictions)."""
    records = [point_record(p, reference_layers, kind) for p in points]
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
        "test_tokens": np.asarray(test_tokens, dtype=np.int64).tolist(),
        **({"test_labels": compact(test_labels, kind), "outcome_kind": kind} if test_labels is not None else {}),
        "points": records,
        "seconds": seconds,
    }


def run_sweep(*, preset: str, task_name: str, tokenized, tokenized_meta, backbone, method: str, variant: str,
              seed: int, checkpoint, train_config, reference_layers: int, out_json, device: str | None = None,
              method_settings: dict | None = None, train_setting: dict | None = None) -> dict:
    """Score the run's checkpoint at every sweep setting of `method` and write the sweep file.
    `train_setting`: the run's training-time sweep value(s) (Method.train_sweep; {} for none)."""
    from earlyexit.data.tasks import get_task
    from earlyexit.data.encoded import load_encoded
    from earlyexit.methods import get_method, run_name
    from earlyexit.plumbing.files import atomic_write_json, read_json
    from earlyexit.plumbing.torch_setup import set_seed
    from earlyexit.runs.context import run_context

    started = time.perf_counter()
    set_seed(seed)
    chosen = get_method(method)
    if chosen.family != "dynamic":
        raise ValueError(f"method {method!r} is not dynamic (family {chosen.family}): it has no exit sweep")
    task = get_task(task_name)
    meta = read_json(tokenized_meta)
    splits = load_encoded(tokenized)
    train_setting = dict(train_setting or {})
    ctx = run_context(chosen, task=task, backbone=backbone, variant=variant, seed=seed, splits=splits, meta=meta,
                      train_config=train_config, device=device, method_settings=method_settings,
                      train_setting=train_setting, progress=False)
    unsupported = chosen.exit_support(task)
    points = [] if unsupported else chosen.score_sweep(ctx, str(checkpoint), chosen.sweep_settings(task))
    num_layers = points[0].dims.num_layers if points else int(meta["num_layers"])
    content = sweep_file(
        run={"preset": preset, "task": task_name, "paper_task": task.paper_task, "synthetic": task.synthetic,
             "backbone": backbone.name, "paper_backbone": backbone.paper_backbone or backbone.name,
             "method": method, "variant": variant, "run": run_name(variant, train_setting),
             "train_setting": train_setting, "label": chosen.label(variant), "seed": seed,
             "metric": task.metric, "checkpoint": str(checkpoint)},
        points=points, reference_layers=reference_layers, test_tokens=splits["test"].lengths, unsupported=unsupported,
        num_layers=num_layers, seconds=time.perf_counter() - started, test_labels=splits["test"].labels,
        kind=kind_of(task))
    atomic_write_json(out_json, content)
    if points:
        log.info("%s %s %s seed %d: %d points, %.2f-%.2fx exact FLOPs on dev", task_name, backbone.name,
                 f"{method}/{content['run']}", seed, len(points),
                 min(r["dev_speedup"]["flops"] for r in content["points"]),
                 max(r["dev_speedup"]["flops"] for r in content["points"]))
    else:
        log.info("%s %s %s seed %d: no sweep (%s)", task_name, backbone.name, method, seed, unsupported)
    return content


def read_sweep(path) -> dict:
    """A sweep file, checked against workflow/schemas/sweep.schema.yaml; ValueError naming the file."""
    from earlyexit.plumbing.records import SCHEMAS, read_checked_json

    return read_checked_json(path, SCHEMAS / "sweep.schema.yaml", "sweep file")
