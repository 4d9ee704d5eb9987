"""Wall-clock inference time over a test split: the paper's actual-inference-time comparison.

For one task x backbone (the first seed's weights), every timed method runs the whole test split at
each batch size: its padded batches are built and moved to the device first (tokenisation,
batching and host-to-device copies are outside the clock, the same for every method), then one
pass = every batch through the method's real inference, ending with the predictions on the host.
`warmup` passes are run and discarded, then `repeats` timed passes; the median is reported. All of
a case's passes run inside its timed model's session (`TimedModel.session`: what a method builds
per batch, e.g. its exit heads' functions, is built once).
On CUDA the clock reads after `torch.cuda.synchronize()`.

Every method runs through the one `InferenceRunner` here: the method gives its trained model at its
operating point as an earlyexit.cost.inference.TimedModel (`Method.timed_model`), and the runner builds
its batches, runs them and counts the cost of the timed pass itself, so the FLOPs speed-up printed
beside the wall-clock one measures the same computation. Every model runs its backbone's fast
linear path (earlyexit/models/fast_linear.py); the full model's weights are also timed through the
plain HF forward with PyTorch's default kernels, as a reference point (`plain_hf`). `dtype`
bfloat16 casts every model's weights to bf16 (bf16 inference; fp32 by default).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from earlyexit.cost.flops import ModelDims, TokenExitCost, speedup_record

TIMING_SCOPE = ("model forward and exit decisions over pre-built padded batches already on the device, "
                "predictions copied to the host; tokenisation, batching and host-to-device copies are "
                "outside the clock")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_description(device: torch.device) -> dict:
    """What ran the timings: the device's name and the number of CPU threads torch used."""
    from earlyexit.plumbing.cpu_info import cpu_label

    # a CPU is named with its bf16 units (AMX, AVX512-BF16): they decide what bf16 timings mean
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_label()
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

    with case.runner.timed.session():
        seconds, outputs = time_passes(one_pass, warmup=warmup, repeats=repeats, device=device)
    cost = case.runner.cost(split, batches, outputs)
    return {"batch_size": batch_size, "seconds": seconds, "median_seconds": statistics.median(seconds)}, cost


def time_inference(cases: list[TimingCase], split, *, batch_sizes: list[int], warmup: int, repeats: int,
                   device: torch.device, dims: ModelDims, reference_layers: int, plain: "InferenceRunner | None" = None,
                   dtype: str = "float32") -> dict:
    """Time every case at every batch size. Each entry gets the FLOPs speed-ups of its timed pass
    (against this backbone's own full model and against the family's reference depth) and, per batch
    size, its median seconds and the wall-clock speed-up against the reference case's median.
    `plain`: the reference's weights through the plain HF forward, timed the same way (`plain_hf`)."""
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
    extra = {}
    if plain is not None:
        plain_case = TimingCase("plain HF", "", "plain HF forward (default kernels)", "static", None, None, plain)
        extra["plain_hf"] = {"label": plain_case.label,
                             "timings": [time_case(plain_case, split, b, warmup=warmup, repeats=repeats,
                                                   device=device)[0] for b in batch_sizes]}
    full = next(e for e in entries if e["reference"])
    full_median = {t["batch_size"]: t["median_seconds"] for t in full["timings"]}
    for entry in [*entries, *extra.values()]:
        for timed in entry["timings"]:
            timed["wall_speedup"] = full_median[timed["batch_size"]] / timed["median_seconds"]
    return {"split": "test", "instances": len(split), "batch_sizes": list(batch_sizes), "warmup": warmup,
            "repeats": repeats, "statistic": "median", "timing_scope": TIMING_SCOPE, "dtype": dtype,
            **device_description(device), "entries": entries, **extra}


# --- the one runner ------------------------------------------------------------------------------

class InferenceRunner:
    """Every method's timed inference: a TimedModel (earlyexit.cost.inference) over padded batches.
    `batches(split, batch_size)` -> device-ready batches (not timed); `run(batch)` -> (predictions,
    per-row outputs) on the host, one batch of real inference (timed); `cost(split, batches, outputs)`
    -> earlyexit.cost.flops.TokenExitCost of the pass, per instance."""

    def __init__(self, timed, pad_id: int, device: torch.device, dtype: torch.dtype | None = None):
        self.timed, self.pad_id, self.device = timed.to(device, dtype), pad_id, device

    @property
    def model(self):
        return self.timed.model

    def batches(self, split, batch_size: int) -> list:
        from earlyexit.data.batching import collate, evaluation_batches

        prepared = self.timed.prepare(split)
        return [collate(prepared, indices, self.pad_id, self.timed.num_layers).to(self.device)
                for indices in evaluation_batches(prepared, batch_size)]

    def run(self, batch):
        logits, per_row = self.timed.forward(batch)
        return _answer(logits), per_row

    def cost(self, split, batches, outputs) -> TokenExitCost:
        per_row = None
        if outputs and outputs[0][1] is not None:
            per_row = np.zeros(len(split), dtype=np.asarray(outputs[0][1]).dtype)
            for batch, (_, rows) in zip(batches, outputs):
                per_row[batch.indices] = rows
        return self.timed.cost(self.timed.prepare(split), per_row)


def run_timing(*, preset: str, task_name: str, tokenized, tokenized_meta, backbone, seed: int, cases: list[dict],
               train_config, method_settings: dict, reference_layers: int, batch_sizes: list[int], warmup: int,
               repeats: int, out_json, device: str | None = None, dtype: str = "float32") -> dict:
    """Time every case on the test split and write the timing record
    (workflow/schemas/timing.schema.yaml). `cases`: per (method, variant) of the config, the saved
    weights of its runs (`seed`): `checkpoints`, run name -> path (or one `checkpoint`), its
    `artifacts` (name -> path) and, for a dynamic method, its curve's `matched` file
    (earlyexit/dynamic/matching.py): the seed's matched run and setting are the ones timed. A method that
    cannot run the task (no matched point) is listed under `skipped` with the reason. `dtype`: the
    weights' dtype at inference (float32, bfloat16)."""
    from earlyexit.data.tasks import get_task
    from earlyexit.data.encoded import load_encoded
    from earlyexit.cost.inference import PlainHF
    from earlyexit.dynamic.matching import read_matched
    from earlyexit.methods import get_method
    from earlyexit.runs.context import run_context
    from earlyexit.plumbing.files import atomic_write_json, read_json
    from earlyexit.plumbing.torch_setup import pick_device, set_seed

    if dtype not in DTYPES:
        raise ValueError(f"timing dtype {dtype!r} is not one of {', '.join(DTYPES)}")
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
        ctx = run_context(method, task=task, backbone=backbone, variant=case["variant"], seed=seed, splits=splits,
                          meta=meta, train_config=train_config, device=dev_,
                          method_settings=method_settings.get(method.name), train_setting=train_setting,
                          artifacts=case.get("artifacts"), progress=False)
        runner = InferenceRunner(method.timed_model(ctx, checkpoint, setting), meta["pad_id"], dev_, DTYPES[dtype])
        chosen.append(TimingCase(method.name, case["variant"], method.label(case["variant"]), method.family, setting,
                                 source, runner, bool(method.reference)))
    reference = next((c for c in chosen if c.reference), None)
    if reference is None:
        raise ValueError(f"timing of {task_name} x {backbone.name}: the config runs no full (reference) model to compare with")
    plain = InferenceRunner(PlainHF(reference.runner.model.hf), meta["pad_id"], dev_, DTYPES[dtype])
    record = {"preset": preset, "task": task_name, "backbone": backbone.name, "seed": seed,
              **time_inference(chosen, splits["test"], batch_sizes=batch_sizes, warmup=warmup, repeats=repeats,
                               device=dev_, dims=reference.runner.timed.dims, reference_layers=reference_layers,
                               plain=plain, dtype=dtype),
              "skipped": skipped}
    atomic_write_json(out_json, record)
    return record


def _answer(logits: torch.Tensor) -> np.ndarray:
    """Predictions on the host (class, or the score for one logit): every runner ends a batch here."""
    logits = logits.float()
    return (logits[:, 0] if logits.shape[-1] == 1 else logits.argmax(-1)).cpu().numpy()
