"""Inference wall-clock of HashEE vs the plain backbone, against HashEE's FLOPs speed-up (CPU).

    python benchmarks/bench_inference.py --backbone minilm --data-dir /work/shared/data/elue \
        --task SST-2 --batch-sizes 1 32 --threads 1 --out benchmarks/results/cpu-1thread-minilm-sst2.json

Fits the hash on the task's train split, then times inference over (a prefix of) the dev split,
in length-sorted batches, for: the plain HF model (HF's forward, PyTorch's default kernels); our
forward with every token at the last layer ("own full"); HashEE; and, on a CPU, both of ours again
with the fast linear path switched off (PyTorch's default GEMM). Ours run the backbone's fast
linear path (earlyexit/models/fast_linear.py), as every model of the suite does. The host-side
preparation of the batches is timed the same way: HashEE's (padding + exit schedule, `collate`)
and the plain model's (its tokenised padding). The variants are timed in turn inside each pass
(median of --repeats passes after a warm-up). Without --data-dir it uses the synthetic sentiment
task.

Per batch size it reports FLOPs speed-up (vs the backbone's own full model) and
  - efficiency: wall-clock speed-up over the plain HF model / FLOPs speed-up (the issue's metric);
  - efficiency_vs_own_full: the same against our own full forward with the same kernels, which
    isolates what early exiting gains from what the faster GEMM gains;
  - a measured roofline bound of that kernel-neutral efficiency (benchmarks/roofline.py).
End to end per instance = (preparation + forward) / instances, for HashEE and for the plain model;
`wall_speedup_with_prep` is their ratio. --dtype bfloat16 casts both models' weights to bf16 (on a
CPU the fast path then runs packed bf16 GEMMs). On a GPU (--device cuda) the default-GEMM variants
are left out; the roofline, about the fp32 CPU kernels, runs in fp32 on a CPU only.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import roofline  # noqa: E402
from bench_common import add_common_args, add_inference_args, interleaved_medians, setup, wait_for_quiet  # noqa: E402

import copy  # noqa: E402

from earlyexit.data.batching import attach_exit_layers, collate, evaluation_batches, pad_rows  # noqa: E402
from earlyexit.data.encoded import encode_examples  # noqa: E402
from earlyexit.cost.flops import ModelDims, speedup_record, token_exit_cost  # noqa: E402
from earlyexit.models.fast_linear import install_fast_linears, set_fast_linears  # noqa: E402
from earlyexit.models.hashee import HashEEForSequenceClassification  # noqa: E402
from earlyexit.plumbing.files import atomic_write_json  # noqa: E402
from earlyexit.plumbing.torch_setup import pick_device  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    add_inference_args(p)
    p.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = p.parse_args(argv)

    device = pick_device(args.device)
    cpu, cpu_fp32 = device.type == "cpu", device.type == "cpu" and args.dtype == "float32"
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    task, _, dev, tokenizer, hf, token_hash = setup(args, fast_linears=False)
    hf.eval().to(device, dtype=getattr(torch, args.dtype))
    # ours: the same weights with the backbone's fast linear path, as load_classifier gives every model
    model = HashEEForSequenceClassification(install_fast_linears(copy.deepcopy(hf))).eval()
    L = model.num_layers
    dims = ModelDims.from_hf_config(hf.config)
    pad = tokenizer.pad_token_id
    costs = roofline.measure(model, lambda linear, x: linear(x)) if cpu_fp32 else None
    rows = []
    for bs in args.batch_sizes:
        n = min(len(dev), args.instances_batch1 if bs == 1 else args.instances)
        encoded = lambda: encode_examples(tokenizer, dev[:n], 128, task.is_regression)  # noqa: E731
        split_full = attach_exit_layers(encoded(), None, L, np.random.default_rng(0))
        split_hash = attach_exit_layers(encoded(), token_hash, L, np.random.default_rng(0))
        order = evaluation_batches(split_full, bs)
        hash_batches = [collate(split_hash, idx, pad, L).to(device) for idx in order]
        full_batches = [collate(split_full, idx, pad, L).to(device) for idx in order]

        def hashee_prep():   # HashEE's host-side preparation: padding + exit schedule, to the device
            return [collate(split_hash, idx, pad, L).to(device) for idx in order]

        def plain_prep():    # the plain model's: its tokenised padding (ids, token types, mask), to the device
            out = []
            for idx in order:
                r = pad_rows(split_full, idx, pad)
                out.append([torch.from_numpy(a).to(device) for a in (r["ids"], r["types"], r["mask"]) if a is not None])
            return out

        def plain():
            for b in full_batches:
                hf(input_ids=b.input_ids, token_type_ids=b.token_type_ids, attention_mask=b.attention_mask)

        def ours(batches, fast):
            def run():
                set_fast_linears(model, fast)
                for b in batches:
                    model(b.input_ids, b.token_type_ids, b.schedule)
            return run

        load = wait_for_quiet(args.max_load, args.max_wait)
        variants = {"plain_hf": plain, "own_full": ours(full_batches, True), "hashee": ours(hash_batches, True),
                    "hashee_prep": hashee_prep, "plain_prep": plain_prep}
        if cpu:
            variants.update(own_full_default_gemm=ours(full_batches, False), hashee_default_gemm=ours(hash_batches, False))
        with torch.inference_mode():
            t = interleaved_medians(variants, args.repeats, sync)
        set_fast_linears(model, True)
        load_after = os.getloadavg()[0]
        bound = lambda batches: sum(  # noqa: E731
            roofline.bound_seconds(model, costs, roofline.linear_rows(b.schedule, *b.input_ids.shape)) for b in batches)
        cost = token_exit_cost(split_hash.exit_layers, dims)
        # Wall-clock efficiency compares with this backbone's own full model, so its FLOPs too.
        flops = speedup_record(cost.tokens, cost.method_flops, cost.elue_depth, dims, dims.num_layers)["speedup"]
        fs = flops["flops_vs_own_full"]
        eff_own = t["own_full"] / t["hashee"] / fs
        hashee_e2e, plain_e2e = t["hashee_prep"] + t["hashee"], t["plain_prep"] + t["plain_hf"]
        row = {
            "batch_size": bs, "instances": n, "threads": torch.get_num_threads(),
            "load_avg_1min_before": load, "load_avg_1min_after": load_after,
            **{f"{k}_seconds": v for k, v in t.items()},
            "flops_speedup": fs, "elue_speedup": flops["elue_vs_own_full"],
            "wall_speedup_vs_plain": t["plain_hf"] / t["hashee"],
            # end to end = preparation + forward, both medians of the interleaved passes
            "hashee_end_to_end_seconds_per_instance": hashee_e2e / n,
            "plain_end_to_end_seconds_per_instance": plain_e2e / n,
            "wall_speedup_with_prep": plain_e2e / hashee_e2e,
            "efficiency": t["plain_hf"] / t["hashee"] / fs,
            "wall_speedup_vs_own_full": t["own_full"] / t["hashee"],
            "efficiency_vs_own_full": eff_own,
            "mean_exit_layer": float(cost.elue_depth.mean()),
        }
        if cpu:
            row["efficiency_vs_own_full_default_gemm"] = t["own_full_default_gemm"] / t["hashee_default_gemm"] / fs
        if cpu_fp32:
            bound_full, bound_hash = bound(full_batches), bound(hash_batches)
            row.update({
                "roofline_full_linear_seconds": bound_full, "roofline_hashee_linear_seconds": bound_hash,
                "roofline_bound_efficiency": bound_full / bound_hash / fs,
                "efficiency_vs_own_full_over_bound": eff_own * bound_hash * fs / bound_full,
            })
        rows.append(row)
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    record = {
        "backbone": args.backbone, "num_layers": L, "task": task.name, "hash": args.hash,
        "num_buckets": args.num_buckets, "dtype": args.dtype,
        "data": "ELUE " + args.task if args.data_dir else "synthetic",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else
        f"cpu {platform.machine()} ({torch.get_num_threads()} threads)", "repeats": args.repeats,
        "torch": torch.__version__, "command": "python " + " ".join(sys.argv),
        "roofline_linear_costs": {f"{o}x{i}": c for (o, i), c in (costs or {}).items()},
        "rows": rows,
    }
    atomic_write_json(args.out, record)


if __name__ == "__main__":
    main()
