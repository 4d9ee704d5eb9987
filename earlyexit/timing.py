"""Wall-clock inference time over a test split: the paper's actual-inference-time comparison.

For one task x backbone (the first seed's weights), every timed method runs the whole test split at
each batch size: its padded batches are built and moved to the device first (tokenisation,
batching and host-to-device copies are outside the clock, the same for every method), then one
pass = every batch through the method's real inference, ending with the predictions on the host.
`warmup` passes are run and discarded, then `repeats` timed passes; the median is reported.
On CUDA the clock reads after `torch.cuda.synchronize()`.

Each method brings an `InferenceRunner` (its own weights, at its operating point):
- `batches(split, batch_size)` -> device-ready batches (not timed);
- `run(batch)` -> (predictions, exit info) on the host: one batch of real inference (timed);
- `cost(split, batches, outputs)` -> earlyexit.flops.TokenExitCost of the pass, per instance.
The FLOPs speed-up printed beside the wall-clock one is the cost of the timed pass itself, so the
two measure the same computation. Runners for the full model and HashEE (token-level exits from
the hash) and for the dynamic methods (the multi-exit model's real early exit) are here; a method
can bring its own (`Method.inference_runner`, e.g. CascadeBERT's cascade).
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from earlyexit.flops import ModelDims, TokenExitCost, speedup_record

TIMING_SCOPE = ("model forward and exit decisions over pre-built padded batches already on the device, "
                "predictions copied to the host; tokenisation, batching and host-to-device copies are "
                "outside the clock")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_description(device: torch.device) -> dict:
    """What ran the timings: the device's name and the number of CPU threads torch used."""
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"cpu ({platform.processor() or platform.machine()})")
    return {"device": name, "device_type": device.type, "threads": torch.get_num_threads(),
            "torch": torch.__version__}


def time_passes(one_pass: Callable[[], Any], *, warmup: int, repeats: int, device: torch.device) -> tuple[list[float], Any]:
    """Seconds of each of `repeats` passes after `warmup` untimed ones, and the last pass's result."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"timing needs repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    result = None
    with torch.inference_mode():
        for _ in range(warmup):
            result = one_pass()
        _sync(device)
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            result = one_pass()
            _sync(device)
            seconds.append(time.perf_counter() - started)
    return seconds, result


@dataclass
class TimingCase:
    """One row of the comparison: a method/variant at its operating point, and its runner."""

    method: str
    variant: str
    label: str
    family: str
    setting: dict | None            # the operating point (None: nothing to set)
    setting_source: str | None      # where it comes from (e.g. the sweep file's matched point)
    runner: Any                     # an InferenceRunner
    reference: bool = False         # the full model: wall-clock speed-ups are against it


def time_case(case: TimingCase, split, batch_size: int, *, warmup: int, repeats: int,
              device: torch.device) -> tuple[dict, TokenExitCost]:
    """Time one case at one batch size; the entry's numbers and the pass's cost."""
    batches = case.runner.batches(split, batch_size)

    def one_pass():
        return [case.runner.run(batch) for batch in batches]

    seconds, outputs = time_passes(one_pass, warmup=warmup, repeats=repeats, device=device)
    cost = case.runner.cost(split, batches, outputs)
    return {"batch_size": batch_size, "seconds": seconds, "median_seconds": statistics.median(seconds)}, cost


def time_inference(cases: list[TimingCase], split, *, batch_sizes: list[int], warmup: int, repeats: int,
                   device: torch.device, dims: ModelDims, reference_layers: int) -> dict:
    """Time every case at every batch size. Each entry gets the FLOPs speed-ups of its timed pass
    (against this backbone's own full model and against the family's reference depth) and, per batch
    size, its median seconds and the wall-clock speed-up against the reference case's median."""
    references = [c for c in cases if c.reference]
    if len(references) != 1:
        raise ValueError(f"timing needs exactly one reference (full) model among the cases, got {len(references)}")
    entries = []
    for case in cases:
        timings, cost = [], None
        for batch_size in batch_sizes:
            timed, cost = time_case(case, split, batch_size, warmup=warmup, repeats=repeats, device=device)
            timings.append(timed)
        speed = speedup_record(cost.tokens, cost.method_flops, cost.elue_depth, dims, reference_layers)["speedup"]
        entries.append({"method": case.method, "variant": case.variant, "label": case.label, "family": case.family,
                        "reference": case.reference, "setting": case.setting, "setting_source": case.setting_source,
                        "flops_speedup_vs_own_full": speed["flops_vs_own_full"], "flops_speedup": speed["flops"],
                        "mean_layers": float(np.mean(cost.elue_depth)), "timings": timings})
    full = next(e for e in entries if e["reference"])
    full_median = {t["batch_size"]: t["median_seconds"] for t in full["timings"]}
    for entry in entries:
        for timed in entry["timings"]:
            timed["wall_speedup"] = full_median[timed["batch_size"]] / timed["median_seconds"]
    return {"split": "test", "instances": len(split), "batch_sizes": list(batch_sizes), "warmup": warmup,
            "repeats": repeats, "statistic": "median", "timing_scope": TIMING_SCOPE,
            **device_description(device), "entries": entries}


# --- runners -------------------------------------------------------------------------------------

class TokenExitRunner:
    """The full model and HashEE: `HashEEForSequenceClassification`; every token's exit layer comes
    from `token_hash` (None: the last layer), drawn as the run drew its test split's."""

    def __init__(self, model, token_hash, seed: int, pad_id: int, device: torch.device):
        self.model, self.token_hash, self.seed = model.to(device).eval(), token_hash, seed
        self.pad_id, self.device = pad_id, device

    def _attached(self, split):
        import dataclasses

        from earlyexit.batching import attach_exit_layers

        # rng [seed, 2]: the test split's draws of rand-incons in the run (methods/_token_exit.py)
        return attach_exit_layers(dataclasses.replace(split, exit_layers=None), self.token_hash, self.model.num_layers,
                                  np.random.default_rng([self.seed, 2]))

    def batches(self, split, batch_size: int) -> list:
        from earlyexit.batching import collate, evaluation_batches

        attached = self._attached(split)
        return [collate(attached, indices, self.pad_id, self.model.num_layers).to(self.device)
                for indices in evaluation_batches(attached, batch_size)]

    def run(self, batch):
        logits = self.model(batch.input_ids, batch.token_type_ids, batch.schedule)
        return _answer(logits), None

    def cost(self, split, batches, outputs) -> TokenExitCost:
        from earlyexit.flops import token_exit_cost

        return token_exit_cost(self._attached(split).exit_layers, ModelDims.from_hf_config(self.model.hf.config))


class EarlyExitRunner:
    """A dynamic method's multi-exit model (earlyexit.models.multi_exit) with a fresh exit rule per
    batch (`make_rule()`), as its sweep scores it."""

    def __init__(self, model, make_rule: Callable, pad_id: int, device: torch.device):
        self.model, self.make_rule, self.pad_id, self.device = model.to(device).eval(), make_rule, pad_id, device

    def batches(self, split, batch_size: int) -> list:
        from earlyexit.batching import evaluation_batches
        from earlyexit.models.multi_exit import pad_batch

        out = []
        for indices in evaluation_batches(split, batch_size):
            ids, types, mask, _ = pad_batch(split, indices, self.pad_id)
            out.append((indices, ids.to(self.device), None if types is None else types.to(self.device),
                        mask.to(self.device)))
        return out

    def run(self, batch):
        _, ids, types, mask = batch
        result = self.model.early_exit(ids, types, mask, self.make_rule())
        return _answer(result.logits), result.exit_layers

    def cost(self, split, batches, outputs) -> TokenExitCost:
        from earlyexit.flops import dynamic_exit_cost

        exit_layers = np.zeros(len(split), dtype=np.int64)
        for (indices, *_), (_, layers) in zip(batches, outputs):
            exit_layers[indices] = layers
        return dynamic_exit_cost(split.lengths, exit_layers, ModelDims.from_hf_config(self.model.hf.config))


def token_exit_runner(ctx, checkpoint: str) -> TokenExitRunner:
    """The full model (no hash artifact) or HashEE (its `hash` artifact) with the weights its run saved."""
    from earlyexit.backbones import load_classifier
    from earlyexit.hashing import TokenExitHash
    from earlyexit.models.hashee import HashEEForSequenceClassification

    hf = load_classifier(ctx.backbone, ctx.task.num_labels, ctx.seed)
    hf.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    token_hash = TokenExitHash.load(ctx.artifacts["hash"]) if "hash" in ctx.artifacts else None
    return TokenExitRunner(HashEEForSequenceClassification(hf), token_hash, ctx.seed, ctx.meta["pad_id"], ctx.device)


def early_exit_runner(method, ctx, checkpoint: str, setting: dict) -> EarlyExitRunner:
    """A multi-exit dynamic method (earlyexit/methods/_dynamic.py) with its rule at `setting`."""
    model = method.build(ctx)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    # model_rule, as the sweep scores it: learned rules (BERxiT's LTE, ConsistentEE's policies) read the model
    return EarlyExitRunner(model, lambda: method.model_rule(model, setting, ctx.task), ctx.meta["pad_id"], ctx.device)


def runner_for(method, ctx, checkpoint: str, setting: dict | None):
    """The method's own runner (`inference_runner`) if it has one; else the multi-exit runner for a
    dynamic method with an exit rule, the token-exit runner for the full model and HashEE."""
    own = getattr(method, "inference_runner", None)
    if own is not None:
        return own(ctx, checkpoint, setting)
    if method.family == "dynamic" and hasattr(method, "make_rule"):
        return early_exit_runner(method, ctx, checkpoint, setting)
    if method.reference or method.family == "token-level":
        return token_exit_runner(ctx, checkpoint)
    raise ValueError(f"method {method.name}: no inference runner to time it with")


def run_timing(*, preset: str, task_name: str, tokenized, tokenized_meta, backbone, seed: int, cases: list[dict],
               train_config, method_settings: dict, reference_layers: int, batch_sizes: list[int], warmup: int,
               repeats: int, out_json, device: str | None = None) -> dict:
    """Time every case on the test split and write the timing record
    (workflow/schemas/timing.schema.yaml). `cases`: per (method, variant) of the config, the saved
    weights of its runs (`seed`): `checkpoints`, run name -> path (or one `checkpoint`), its
    `artifacts` (name -> path) and, for a dynamic method, its curve's `matched` file
    (earlyexit/matching.py): the seed's matched run and setting are the ones timed. A method that
    cannot run the task (no matched point) is listed under `skipped` with the reason."""
    from earlyexit.data.tasks import get_task
    from earlyexit.encoded import load_encoded
    from earlyexit.matching import read_matched
    from earlyexit.methods import RunContext, get_method
    from earlyexit.plumbing.files import atomic_write_json, read_json
    from earlyexit.plumbing.torch_setup import pick_device, set_seed

    set_seed(seed)
    task, meta, splits, dev_ = get_task(task_name), read_json(tokenized_meta), load_encoded(tokenized), pick_device(device)
    chosen, skipped = [], []
    for case in cases:
        method = get_method(case["method"])
        checkpoints = case.get("checkpoints") or {case["variant"]: case["checkpoint"]}
        setting = source = None
        checkpoint, train_setting = checkpoints.get(case["variant"]), {}
        if method.family == "dynamic":
            matched = read_matched(case["matched"])
            entry = next((e for e in matched["seeds"] if e["seed"] == seed), None)
            if entry is None:
                raise ValueError(f"{case['matched']}: no matched point for seed {seed}")
            if entry["matched"] is None:
                skipped.append({"method": method.name, "variant": case["variant"],
                                "reason": entry["unsupported"] or "the sweep has no point"})
                continue
            point = entry["matched"]
            if point["run"] not in checkpoints:
                raise ValueError(f"{case['matched']}: matched run {point['run']!r} has no checkpoint among the inputs")
            checkpoint, setting, train_setting = checkpoints[point["run"]], point["setting"], point["train_setting"]
            source = (f"{case['matched']}: matched point {point['operating_point']} of run {point['run']} "
                      f"(target {matched['target']['speedup']:g}x, {matched['target']['source']})")
        ctx = RunContext(task=task, backbone=backbone, variant=case["variant"], seed=seed, splits=splits, meta=meta,
                         artifacts=dict(case.get("artifacts") or {}), train_config=train_config, device=dev_,
                         progress=False, settings={**(method_settings.get(method.name) or {}), **train_setting})
        chosen.append(TimingCase(method.name, case["variant"], method.label(case["variant"]), method.family, setting,
                                 source, runner_for(method, ctx, checkpoint, setting), bool(method.reference)))
    reference = next((c for c in chosen if c.reference), None)
    if reference is None:
        raise ValueError(f"timing of {task_name} x {backbone.name}: the config runs no full (reference) model to compare with")
    dims = ModelDims.from_hf_config(reference.runner.model.hf.config)
    record = {"preset": preset, "task": task_name, "backbone": backbone.name, "seed": seed,
              **time_inference(chosen, splits["test"], batch_sizes=batch_sizes, warmup=warmup, repeats=repeats,
                               device=dev_, dims=dims, reference_layers=reference_layers),
              "skipped": skipped}
    atomic_write_json(out_json, record)
    return record


def _answer(logits: torch.Tensor) -> np.ndarray:
    """Predictions on the host (class, or the score for one logit): every runner ends a batch here."""
    logits = logits.float()
    return (logits[:, 0] if logits.shape[-1] == 1 else logits.argmax(-1)).cpu().numpy()


class CascadeRunner:
    """CascadeBERT's cascade (earlyexit.models.cascade) at one threshold: the big model runs only on
    the rows the small one does not answer."""

    def __init__(self, model, threshold: float, pad_id: int, device: torch.device):
        self.model, self.threshold, self.pad_id, self.device = model.to(device).eval(), threshold, pad_id, device

    def batches(self, split, batch_size: int) -> list:
        from earlyexit.batching import evaluation_batches
        from earlyexit.models.multi_exit import pad_batch

        out = []
        for indices in evaluation_batches(split, batch_size):
            ids, types, mask, _ = pad_batch(split, indices, self.pad_id)
            out.append((indices, ids.to(self.device), None if types is None else types.to(self.device),
                        mask.to(self.device), mask.sum(1).numpy()))
        return out

    def run(self, batch):
        _, ids, types, mask, lengths = batch
        logits, escalated = self.model.cascade(ids, types, mask, self.threshold, lengths)
        return _answer(logits), escalated

    def cost(self, split, batches, outputs) -> TokenExitCost:
        from earlyexit.methods.cascadebert import cascade_cost

        escalated = np.zeros(len(split), dtype=bool)
        for (indices, *_), (_, up) in zip(batches, outputs):
            escalated[indices] = up
        return cascade_cost(split.lengths, escalated, ModelDims.from_hf_config(self.model.small.config),
                            ModelDims.from_hf_config(self.model.big.config))
