"""Inference wall-clock of HashEE vs the plain backbone, against HashEE's FLOPs speed-up.

    python benchmarks/bench_inference.py --backbone minilm --data-dir ../shared/data/elue \
        --task SST-2 --batch-sizes 1 32 --out benchmarks/results/cpu-minilm.json

Fits the hash on the task's train split, then times inference over (a prefix of) the dev split:
the plain HF model, our forward with every token at the last layer (the "full" row), and HashEE.
Without --data-dir it uses the synthetic sentiment task. Reports per configuration:
wall-clock speed-up over the plain model, FLOPs speed-up, and their ratio ("efficiency": 1.0 means
the wall clock gains all that the FLOPs promise). Host-side batch preparation (padding + exit
schedule) is timed separately and included in the end-to-end numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from earlyexit.backbones import BackboneSpec, load_classifier, load_tokenizer
from earlyexit.batching import attach_exit_layers, collate, evaluation_batches
from earlyexit.data.elue import read_elue_split
from earlyexit.data.synthetic import make_synthetic_task
from earlyexit.data.tasks import get_task
from earlyexit.encoded import encode_examples
from earlyexit.flops import ModelDims, speedup_record, token_exit_cost
from earlyexit.hashing import fit_hash
from earlyexit.plumbing.files import atomic_write_json
from earlyexit.models.hashee import HashEEForSequenceClassification
from earlyexit.plumbing.torch_setup import pick_device


def load_texts(args):
    if args.data_dir:
        task = get_task(args.task)
        root = Path(args.data_dir) / args.task
        return task, read_elue_split(root / "train.tsv", task), read_elue_split(root / "dev.tsv", task)
    task = get_task("synth-sentiment")
    splits = make_synthetic_task("synth-sentiment", {"train": 2000, "dev": args.instances}, seed=0)
    return task, splits["train"], splits["dev"]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_pass(fn, batches, device, repeats):
    """Median seconds of `repeats` passes over all batches (after one warm-up pass)."""
    fn_all = lambda: [fn(b) for b in batches]  # noqa: E731
    with torch.inference_mode():
        fn_all()
        sync(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn_all()
            sync(device)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="minilm", help="minilm | tiny | a HF hub id or local folder")
    p.add_argument("--num-layers", type=int, default=None)
    p.add_argument("--task", default="SST-2")
    p.add_argument("--data-dir", default=None, help="ELUE-format folder (e.g. ../shared/data/elue)")
    p.add_argument("--hash", default="frequency")
    p.add_argument("--num-buckets", type=int, default=6)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    p.add_argument("--instances", type=int, default=512, help="dev instances timed per batch size")
    p.add_argument("--instances-batch1", type=int, default=128, help="fewer at batch 1 (slow)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if args.backbone == "minilm":
        spec = BackboneSpec("minilm", "minilm", num_layers=args.num_layers)
    elif args.backbone == "tiny":
        spec = BackboneSpec("tiny", "random", num_layers=args.num_layers or 6)
    else:
        spec = BackboneSpec(args.backbone, "hub", hub_id=args.backbone, num_layers=args.num_layers)

    task, train, dev = load_texts(args)
    tokenizer = load_tokenizer(spec)
    hf = load_classifier(spec, task.num_labels, seed=0).eval().to(device, dtype=getattr(torch, args.dtype))
    model = HashEEForSequenceClassification(hf).eval()
    L = model.num_layers
    train_enc = encode_examples(tokenizer, train, 128, task.is_regression)
    token_hash = fit_hash(args.hash, train_enc.input_ids, train_enc.labels, vocab_size=len(tokenizer),
                          special_ids=tokenizer.all_special_ids, num_layers=L, num_buckets=args.num_buckets,
                          num_labels=task.num_labels, seed=0)
    dims = ModelDims.from_hf_config(hf.config)
    rows = []
    for bs in args.batch_sizes:
        n = min(len(dev), args.instances_batch1 if bs == 1 else args.instances)
        split_full = attach_exit_layers(encode_examples(tokenizer, dev[:n], 128, task.is_regression), None, L,
                                        np.random.default_rng(0))
        split_hash = attach_exit_layers(encode_examples(tokenizer, dev[:n], 128, task.is_regression), token_hash, L,
                                        np.random.default_rng(0))
        order = evaluation_batches(split_full, bs)
        pad = tokenizer.pad_token_id
        start = time.perf_counter()
        hash_batches = [collate(split_hash, idx, pad, L).to(device) for idx in order]
        prep_seconds = time.perf_counter() - start
        full_batches = [collate(split_full, idx, pad, L).to(device) for idx in order]

        def plain(b):
            return hf(input_ids=b.input_ids, token_type_ids=b.token_type_ids,
                      attention_mask=b.schedule.key_mask[:, 0, 0].long()).logits

        def ours(b):
            return model(b.input_ids, b.token_type_ids, b.schedule)

        t_plain = time_pass(plain, full_batches, device, args.repeats)
        t_full = time_pass(ours, full_batches, device, args.repeats)
        t_hash = time_pass(ours, hash_batches, device, args.repeats)
        cost = token_exit_cost(split_hash.exit_layers, dims)
        # Wall-clock efficiency compares with this backbone's own full model, so its FLOPs too.
        flops = speedup_record(cost.tokens, cost.method_flops, cost.elue_depth, dims, dims.num_layers)["speedup"]
        row = {
            "batch_size": bs, "instances": n,
            "plain_hf_seconds": t_plain, "ours_full_seconds": t_full, "hashee_seconds": t_hash,
            "hashee_batch_prep_seconds": prep_seconds,
            "wall_speedup_vs_plain": t_plain / t_hash,
            "wall_speedup_with_prep": t_plain / (t_hash + prep_seconds),
            "flops_speedup": flops["flops_vs_own_full"], "elue_speedup": flops["elue_vs_own_full"],
            "efficiency": (t_plain / t_hash) / flops["flops_vs_own_full"],
            "mean_exit_layer": float(cost.elue_depth.mean()),
        }
        rows.append(row)
        print(json.dumps(row))
    record = {
        "backbone": spec.name, "num_layers": L, "task": task.name, "hash": args.hash,
        "num_buckets": args.num_buckets, "dtype": args.dtype, "data": "ELUE " + args.task if args.data_dir else "synthetic",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else
        f"cpu {platform.machine()} ({torch.get_num_threads()} threads)",
        "torch": torch.__version__, "rows": rows,
    }
    atomic_write_json(args.out, record)


if __name__ == "__main__":
    main()
