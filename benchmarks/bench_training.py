"""Training throughput of HashEE vs the plain HF model on the same backbone (CPU).

    python benchmarks/bench_training.py --backbone minilm --data-dir /work/shared/data/elue \
        --task SST-2 --train-instances 512 --batch-size 32 --threads 1 \
        --out benchmarks/results/cpu-1thread-minilm-sst2-training.json

Both models start from the same weights and run the same training batches (a bucketed shuffle of
a prefix of the train split, as the training loop cuts them): forward, cross-entropy, backward,
gradient clipping and a fused AdamW step, in train mode (dropout on). The two are timed in turn
inside each pass (median of --repeats passes after a warm-up pass). Reports examples/s of each,
the FLOPs speed-up of HashEE's forward over the backbone's own full model on those examples (the
backward's FLOPs follow the forward's token for token, so the ratio is the training one too), and
efficiency = throughput ratio / FLOPs speed-up. With --cpu-bf16, both models also train under
CPU bf16 autocast (what training.cpu_bf16 does), timed in the same passes: the rows then say what
bf16 buys this CPU (`cpu_bf16_speedup_*`; it pays off on CPUs with AMX / AVX512-BF16 units).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import add_common_args, interleaved_medians, setup, wait_for_quiet  # noqa: E402

from earlyexit.data.batching import attach_exit_layers, collate, training_batches  # noqa: E402
from earlyexit.data.encoded import encode_examples  # noqa: E402
from earlyexit.cost.flops import ModelDims, speedup_record, token_exit_cost  # noqa: E402
from earlyexit.models.hashee import HashEEForSequenceClassification  # noqa: E402
from earlyexit.plumbing.cpu_info import cpu_description, cpu_label  # noqa: E402
from earlyexit.plumbing.files import atomic_write_json  # noqa: E402
from earlyexit.training.loop import make_optimizer  # noqa: E402


def trainer(model, forward, batches):
    """One pass over `batches`: forward, loss, backward, clip, optimizer step per batch."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, SimpleNamespace(optimizer="adamw", lr=1e-5, weight_decay=0.01))

    def run():
        model.train()
        for b in batches:
            loss = F.cross_entropy(forward(b).float(), b.labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
    return run


def bf16(forward):
    """`forward` under CPU bf16 autocast (the loss is taken in fp32, as the training loop does)."""
    def run(b):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return forward(b)
    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--train-instances", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--cpu-bf16", action="store_true", help="also time both models under CPU bf16 autocast")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.train_instances < args.batch_size:
        p.error("--repeats must be >= 1 and --train-instances >= --batch-size")

    task, train, _, tokenizer, hf_plain, token_hash = setup(args)
    hf_ours = copy.deepcopy(hf_plain)     # the same weights, driven by HashEE
    model = HashEEForSequenceClassification(hf_ours)
    L = model.num_layers
    pad = tokenizer.pad_token_id
    split = attach_exit_layers(encode_examples(tokenizer, train[:args.train_instances], args.max_length,
                                               task.is_regression), token_hash, L, np.random.default_rng(0))
    order = training_batches(split, args.batch_size, np.random.default_rng(0))
    batches = [collate(split, idx, pad, L) for idx in order]
    instances = sum(len(idx) for idx in order)

    def plain_forward(hf):
        return lambda b: hf(input_ids=b.input_ids, token_type_ids=b.token_type_ids,
                            attention_mask=b.schedule.key_mask[:, 0, 0].long()).logits

    variants = {"plain_hf": trainer(hf_plain, plain_forward(hf_plain), batches),
                "hashee": trainer(model, lambda b: model(b.input_ids, b.token_type_ids, b.schedule), batches)}
    if args.cpu_bf16:
        # copies with their own optimizers: the fp32 variants' weights and steps stay untouched
        hf_bf16, model_bf16 = copy.deepcopy(hf_plain), copy.deepcopy(model)
        variants["plain_hf_bf16"] = trainer(hf_bf16, bf16(plain_forward(hf_bf16)), batches)
        variants["hashee_bf16"] = trainer(model_bf16, bf16(lambda b: model_bf16(b.input_ids, b.token_type_ids,
                                                                                 b.schedule)), batches)
    load = wait_for_quiet(args.max_load, args.max_wait)
    t = interleaved_medians(variants, args.repeats)
    load_after = os.getloadavg()[0]

    dims = ModelDims.from_hf_config(hf_plain.config)
    cost = token_exit_cost(split.exit_layers, dims)
    fs = speedup_record(cost.tokens, cost.method_flops, cost.elue_depth, dims, dims.num_layers)["speedup"][
        "flops_vs_own_full"]
    row = {
        "batch_size": args.batch_size, "instances": instances, "steps_per_pass": len(batches),
        "threads": torch.get_num_threads(), "load_avg_1min_before": load, "load_avg_1min_after": load_after,
        "plain_hf_seconds": t["plain_hf"], "hashee_seconds": t["hashee"],
        "plain_hf_examples_per_second": instances / t["plain_hf"],
        "hashee_examples_per_second": instances / t["hashee"],
        "throughput_speedup": t["plain_hf"] / t["hashee"], "flops_speedup": fs,
        "efficiency": t["plain_hf"] / t["hashee"] / fs, "mean_exit_layer": float(cost.elue_depth.mean()),
    }
    if args.cpu_bf16:
        row.update({"plain_hf_bf16_seconds": t["plain_hf_bf16"], "hashee_bf16_seconds": t["hashee_bf16"],
                    "cpu_bf16_speedup_plain_hf": t["plain_hf"] / t["plain_hf_bf16"],
                    "cpu_bf16_speedup_hashee": t["hashee"] / t["hashee_bf16"]})
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    atomic_write_json(args.out, {
        "backbone": args.backbone, "num_layers": L, "task": task.name, "hash": args.hash,
        "num_buckets": args.num_buckets, "dtype": "float32", "max_length": args.max_length,
        "data": "ELUE " + args.task + " train" if args.data_dir else "synthetic",
        "device": cpu_label(torch.get_num_threads()), "cpu": cpu_description(), "repeats": args.repeats,
        "torch": torch.__version__, "command": "python " + " ".join(sys.argv), "rows": [row],
    })


if __name__ == "__main__":
    main()
