"""Cost of a dynamic method's threshold sweep: real early exit once per setting against one pass of
every layer with each setting's exits replayed on it (earlyexit.methods._dynamic.replay_rules).

    python benchmarks/bench_sweep.py --backbone minilm --data-dir /work/shared/data/elue --task SST-2 \
        --threads 1 --out benchmarks/results/cpu-1thread-minilm-sst2-sweep.json

The model is the backbone with DeeBERT's exit heads (untrained heads: the decisions vary with the
threshold, which is all a timing needs), scored over the task's dev split at every entropy threshold
of DeeBERT's sweep. Both ways must give the same exit layer for every instance; the benchmark checks
that and reports each way's seconds (one warm-up, median of --repeats passes, in turn).
Without --data-dir it uses the synthetic sentiment task.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import add_common_args, interleaved_medians, setup, wait_for_quiet  # noqa: E402

from earlyexit.data.encoded import encode_examples  # noqa: E402
from earlyexit.methods import get_method  # noqa: E402
from earlyexit.methods._dynamic import evaluate_with_rule, replay_rules  # noqa: E402
from earlyexit.models.multi_exit import MultiExitClassifier  # noqa: E402
from earlyexit.plumbing.files import atomic_path  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(p)
    p.add_argument("--batch-size", type=int, default=128, help="evaluation batch size (the presets' eval_batch_size)")
    args = p.parse_args(argv)
    task, _, dev, tokenizer, hf, _ = setup(args)
    split = encode_examples(tokenizer, dev, 128, task.is_regression)
    model = MultiExitClassifier(hf, get_method("deebert").heads).eval()
    method = get_method("deebert")
    settings = method.sweep_settings(task)
    makers = [lambda s=s: method.make_rule(s, task) for s in settings]
    ctx = SimpleNamespace(task=task, device=torch.device("cpu"), meta={"pad_id": tokenizer.pad_token_id},
                          train_config=SimpleNamespace(eval_batch_size=args.batch_size, autocast_bf16=lambda device: False))

    per_setting = [evaluate_with_rule(model, split, make, ctx).exit_layers for make in makers]
    replayed = [r.exit_layers for r in replay_rules(model, split, makers, ctx)]
    same = all(np.array_equal(a, b) for a, b in zip(per_setting, replayed))
    if not same:
        raise SystemExit("bench_sweep: replayed exits differ from real early exit")

    load = wait_for_quiet(args.max_load, args.max_wait)
    seconds = interleaved_medians({
        "real_exit_per_setting": lambda: [evaluate_with_rule(model, split, make, ctx) for make in makers],
        "one_pass_replay": lambda: replay_rules(model, split, makers, ctx),
    }, args.repeats)
    result = {
        "what": "DeeBERT entropy sweep over a dev split: real early exit per setting vs one replayed pass",
        "task": args.task if args.data_dir else "synth-sentiment", "instances": len(split),
        "backbone": args.backbone, "settings": len(settings), "batch_size": args.batch_size,
        "mean_exit_layer_per_setting": [float(e.mean()) for e in replayed],
        "same_exit_layers": same, "seconds": seconds,
        "speedup_of_replay": seconds["real_exit_per_setting"] / seconds["one_pass_replay"],
        "threads": torch.get_num_threads(), "load_average_at_start": load, "repeats": args.repeats,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
    }
    with atomic_path(args.out) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("settings", "seconds", "speedup_of_replay")}, indent=2))


if __name__ == "__main__":
    main()
