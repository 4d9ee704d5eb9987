"""What dynamic early exit costs on top of the layers it runs, for every dynamic method (CPU).

    python benchmarks/bench_exit_overhead.py --backbone minilm --data-dir /work/shared/data/elue \
        --task SST-2 --batch-sizes 1 32 --threads 2 --out benchmarks/results/cpu-2thread-minilm-sst2-exit-overhead.json

For every method of the registry's dynamic family, its model (the backbone's pretrained weights,
exits freshly built: the cost does not depend on training) runs SST-2 dev through the timing rule's
one runner (earlyexit.cost.timing.InferenceRunner), in two cases:
- `no-exit`: the method's own rule at a setting where nobody leaves early
  (`Method.never_exit_setting`); reference = its own full forward (every layer, the last exit only);
- `exit-at-k`: every row leaves at layer k (--exit-layer; a cascade at its small model's depth);
  reference = the model truncated to its first k layers with exit k.
So seconds - reference_seconds is the exit machinery: the exit heads, the rule, the one
device-to-host transfer per layer, dropping finished rows. The two alternate batch by batch inside
each pass (median of --repeats passes after a warm-up: bench_common.interleaved_by_batch), inside
the timed model's inference session as in the timing rule (`TimedModel.session`); the predictions
of both are checked to agree.
Without --data-dir it uses the synthetic sentiment task. Writes
{"rows": [{"method", "batch_size", "case", "seconds", "reference_seconds", ...}], ...}.
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
from bench_common import add_common_args, add_inference_args, backbone_spec, interleaved_by_batch, load_texts, wait_for_quiet  # noqa: E402

from earlyexit.models.backbones import load_tokenizer  # noqa: E402
from earlyexit.data.encoded import encode_examples  # noqa: E402
from earlyexit.plumbing.files import atomic_write_json  # noqa: E402
from earlyexit.cost.timing import DTYPES, InferenceRunner, _answer  # noqa: E402


def dynamic_context(method, task, spec, splits, meta):
    from earlyexit.dynamic.settings import method_settings, section
    from earlyexit.methods import RunContext
    from earlyexit.training.loop import TrainConfig

    config = TrainConfig(lr=1e-4, batch_size=32, epochs=1, eval_batch_size=32, warmup_ratio=0.0, weight_decay=0.0,
                         grad_clip=1.0, max_seq_len=128, track_best_on_test=False, optimizer="adamw",
                         evals_per_epoch=1, bf16=False, cpu_bf16=False)
    return RunContext(task=task, backbone=spec, variant=method.variants[0], seed=0, splits=splits, meta=meta,
                      artifacts={}, train_config=config, device=torch.device("cpu"), progress=False,
                      settings=method_settings(section(), method.name))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    add_inference_args(p)
    p.add_argument("--exit-layer", type=int, default=3, help="k of the exit-at-k case")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--methods", nargs="*", default=None, help="registry names (default: every dynamic method)")
    args = p.parse_args(argv)

    from earlyexit.methods import METHODS

    names = args.methods or [n for n, m in METHODS.items() if m.family == "dynamic" and m.timed]
    unknown = [n for n in names if n not in METHODS or METHODS[n].family != "dynamic"]
    if unknown:
        sys.exit(f"bench_exit_overhead: {unknown[0]!r} is not a dynamic method of the registry")
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = backbone_spec(args)
    task, _, dev = load_texts(args, max(args.instances, args.instances_batch1))
    tokenizer = load_tokenizer(spec)
    meta = {"pad_id": tokenizer.pad_token_id}
    rows = []
    for name in names:
        method = METHODS[name]
        encoded = encode_examples(tokenizer, dev, 128, task.is_regression)
        ctx = dynamic_context(method, task, spec, {"dev": encoded}, meta)
        timed = method.timed_model(ctx, None, method.never_exit_setting(task))
        runner = InferenceRunner(timed, meta["pad_id"], torch.device("cpu"), DTYPES[args.dtype])
        points = timed.exit_points()
        k = min(points, key=lambda layer: abs(layer - args.exit_layer))
        forced = InferenceRunner(timed.exiting_at(k), meta["pad_id"], torch.device("cpu"))
        for bs in args.batch_sizes:
            n = min(len(dev), args.instances_batch1 if bs == 1 else args.instances)
            split = encoded.take(np.arange(n))
            batches = runner.batches(split, bs)
            cases = {"no-exit": (runner, timed.reference(None), timed.num_layers),
                     "exit-at-k": (forced, timed.reference(k), k)}
            for case, (run, reference, layer) in cases.items():
                # one batch, its predictions on the host (as the timing rule ends a batch)
                variants = {"method": lambda b, run=run: _answer(run.timed.forward(b)[0]),
                            "reference": lambda b, reference=reference: _answer(reference(b))}
                # both in the model's inference session, as the timing rule runs them (one model)
                with torch.inference_mode(), run.timed.session():
                    answers = {v: np.concatenate([f(b) for b in batches]) for v, f in variants.items()}
                    exits = np.concatenate([run.timed.forward(b)[1] for b in batches])
                if not (answers["method"] == answers["reference"]).all():
                    sys.exit(f"bench_exit_overhead: {name} {case}: its answers differ from the reference's")
                load = wait_for_quiet(args.max_load, args.max_wait)
                with torch.inference_mode(), run.timed.session():
                    t = interleaved_by_batch(variants, batches, args.repeats)
                row = {"method": name, "batch_size": bs, "case": case, "exit_layer": layer, "instances": n,
                       "seconds": t["method"], "reference_seconds": t["reference"],
                       "ratio": t["reference"] / t["method"],
                       "rows_at_the_exit_layer": float(np.mean(exits == layer)) if exits.dtype != bool else None,
                       "load_avg_1min_before": load, "load_avg_1min_after": os.getloadavg()[0]}
                rows.append(row)
                print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    atomic_write_json(args.out, {
        "backbone": args.backbone, "task": task.name, "data": "ELUE " + args.task if args.data_dir else "synthetic",
        "dtype": args.dtype, "threads": torch.get_num_threads(), "repeats": args.repeats,
        "device": f"cpu {platform.machine()} ({torch.get_num_threads()} threads)", "torch": torch.__version__,
        "command": "python " + " ".join(sys.argv), "rows": rows})


if __name__ == "__main__":
    main()
