"""Shared set-up of the CPU speed benchmarks: the backbone, the task's texts, the fitted hash,
waiting for a quiet machine, and interleaved timing (a shared machine's load drifts; timing the
variants in turn inside each pass keeps that drift from favouring one of them)."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import torch

from earlyexit.models.backbones import BackboneSpec, load_classifier, load_tokenizer
from earlyexit.data.elue import read_elue_split
from earlyexit.data.synthetic import make_synthetic_task
from earlyexit.data.tasks import get_task
from earlyexit.data.encoded import encode_examples
from earlyexit.hashing.functions import fit_hash


def add_common_args(p):
    p.add_argument("--backbone", default="minilm", help="minilm | tiny | a HF hub id or local folder")
    p.add_argument("--num-layers", type=int, default=None)
    p.add_argument("--task", default="SST-2")
    p.add_argument("--data-dir", default=None, help="ELUE-format folder (e.g. /work/shared/data/elue)")
    p.add_argument("--hash", default="frequency")
    p.add_argument("--num-buckets", type=int, default=6)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-load", type=float, default=0.7,
                   help="wait (up to --max-wait s) for the 1-minute load average to fall below this")
    p.add_argument("--max-wait", type=float, default=180)
    p.add_argument("--out", required=True)


def add_inference_args(p):
    """The options of the inference benchmarks: batch sizes and how many dev instances each times."""
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    p.add_argument("--instances", type=int, default=512, help="dev instances timed per batch size")
    p.add_argument("--instances-batch1", type=int, default=128, help="fewer at batch 1 (slow)")


def backbone_spec(args) -> BackboneSpec:
    if args.backbone == "minilm":
        return BackboneSpec("minilm", "minilm", num_layers=args.num_layers)
    if args.backbone == "tiny":
        return BackboneSpec("tiny", "random", num_layers=args.num_layers or 6)
    return BackboneSpec(args.backbone, "hub", hub_id=args.backbone, num_layers=args.num_layers)


def load_texts(args, dev_instances: int):
    if args.data_dir:
        task = get_task(args.task)
        root = Path(args.data_dir) / args.task
        return task, read_elue_split(root / "train.tsv", task), read_elue_split(root / "dev.tsv", task)
    task = get_task("synth-sentiment")
    splits = make_synthetic_task("synth-sentiment", {"train": 2000, "dev": dev_instances}, seed=0)
    return task, splits["train"], splits["dev"]


def setup(args, dev_instances: int = 512, fast_linears: bool = True):
    """(task, train, dev, tokenizer, hf model, fitted hash) on the CPU in fp32; `fast_linears=False`:
    the plain HF model, without the suite's fast linear path (earlyexit/models/fast_linear.py)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = backbone_spec(args)
    task, train, dev = load_texts(args, dev_instances)
    tokenizer = load_tokenizer(spec)
    hf = load_classifier(spec, task.num_labels, seed=0, fast_linears=fast_linears)
    layers = hf.config.num_hidden_layers
    train_enc = encode_examples(tokenizer, train, 128, task.is_regression)
    token_hash = fit_hash(args.hash, train_enc.input_ids, train_enc.labels, vocab_size=len(tokenizer),
                          special_ids=tokenizer.all_special_ids, num_layers=layers, num_buckets=args.num_buckets,
                          num_labels=task.num_labels, seed=0)
    return task, train, dev, tokenizer, hf, token_hash


def wait_for_quiet(max_load: float, max_wait: float) -> float:
    """Sleep in 20 s steps until the 1-minute load average is below `max_load` (or `max_wait` is
    spent); returns the load average at the start of the measurement."""
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        print(f"load {os.getloadavg()[0]:.2f} >= {max_load}: waiting", file=sys.stderr, flush=True)
        time.sleep(20)
    return os.getloadavg()[0]


def interleaved_by_batch(variants: dict, batches: list, repeats: int) -> dict[str, float]:
    """Median seconds per variant over `repeats` passes, the variants alternating batch by batch
    (`variants`: name -> callable(batch)), in turns that swap order every batch. A pass takes
    about a second at batch 1 and this machine's speed drifts by several per cent from one second
    to the next, which moved a ratio of pass-by-pass medians by 0.1 between two runs of the same
    code; batch by batch, the drift falls on both variants alike. One warm-up pass each."""
    names = list(variants)
    for name in names:
        for batch in batches:
            variants[name](batch)
    totals = {name: [] for name in names}
    for r in range(repeats):
        spent = dict.fromkeys(names, 0.0)
        for i, batch in enumerate(batches):
            for name in (names if (i + r) % 2 == 0 else names[::-1]):
                start = time.perf_counter()
                variants[name](batch)
                spent[name] += time.perf_counter() - start
        for name in names:
            totals[name].append(spent[name])
    return {name: statistics.median(t) for name, t in totals.items()}


def interleaved_medians(variants: dict, repeats: int, sync=lambda: None) -> dict[str, float]:
    """Median seconds per variant; each variant is a no-argument callable doing one full pass.
    One warm-up pass each, then `repeats` rounds that run every variant once, in turn; `sync`
    waits for queued device work (torch.cuda.synchronize on a GPU)."""
    for run in variants.values():
        run()
    sync()
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
