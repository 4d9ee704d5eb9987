"""Where a batch-1 dynamic exit's extra time goes, in place and in isolation (CPU).

    python benchmarks/bench_exit_breakdown.py --backbone minilm --data-dir /work/shared/data/elue \
        --task SST-2 --threads 2 --methods pabee deebert --out benchmarks/results/cpu-2thread-minilm-sst2-exit-breakdown.json

For each method (freshly built exits, its own rule at a setting where nobody leaves early, as in
bench_exit_overhead.py's `no-exit` case) over the first SST-2 dev sentences at batch 1, the forward
(`with_exits`) and its reference (its own full forward, the last exit only) run with a clock around every layer,
every exit head and every rule decision (with its transfer to the host), the two alternating batch
by batch (median of --repeats passes). Per instance it reports each part's time and what is left
(embeddings, the loop's bookkeeping). It then times the same heads and rule calls in isolation:
back to back on one batch's states, as a micro-benchmark would. In place they run between layers
that stream every layer's weights through the caches, which is what the in-place numbers measure.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import add_common_args, backbone_spec, interleaved_by_batch, load_texts  # noqa: E402
from bench_exit_overhead import dynamic_context  # noqa: E402

from earlyexit.cost.timing import InferenceRunner  # noqa: E402
from earlyexit.data.encoded import encode_examples  # noqa: E402
from earlyexit.dynamic.exit_rules import LayerView  # noqa: E402
from earlyexit.models.backbones import load_tokenizer  # noqa: E402
from earlyexit.models.multi_exit import lean_head  # noqa: E402
from earlyexit.plumbing.files import atomic_write_json  # noqa: E402

PARTS = ("layers", "heads", "rule")


class Clocked(torch.nn.Module):
    """A module whose calls add their seconds to `spent[part]`."""

    def __init__(self, inner: torch.nn.Module, part: str, spent: dict):
        super().__init__()
        self.inner, self.part, self.spent = inner, part, spent

    def __getattr__(self, name: str):
        # the wrapped module's own attributes (a learned rule reads its head's `pooled_of`)
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("inner"), name)

    def forward(self, *args):
        start = time.perf_counter()
        out = self.inner(*args)
        self.spent[self.part] += time.perf_counter() - start
        return out

    def lean(self, rows: int | None = None):
        """The wrapped head's plain function (`lean_head`: what the runner calls in place of the
        module), clocked like `forward`."""
        inner, spent, part = lean_head(self.inner, rows), self.spent, self.part

        def clocked(*args):
            start = time.perf_counter()
            out = inner(*args)
            spent[part] += time.perf_counter() - start
            return out
        return clocked


def clocked_rule(make_rule, spent: dict):
    """A rule maker whose rules add each decision's seconds (with its transfer) to spent["rule"]."""
    def make():
        rule = make_rule()
        decide = rule.decide

        def timed_decide(view):
            start = time.perf_counter()
            leave = decide(view)
            spent["rule"] += time.perf_counter() - start
            return leave
        rule.decide = timed_decide
        return rule
    return make


def isolated(model, make_rule, batch, repeats: int = 200) -> dict:
    """Seconds of one batch's exit heads (layers 1..L-1) and rule decisions, run back to back."""
    h, mask = model.embed(batch.input_ids, batch.token_type_ids, batch.attention_mask)
    states = []
    for layer in model.layers:
        h = layer(h, mask)
        states.append(h)
    last = model.num_layers - 1
    logits = [model.exits[i](states[i], mask) for i in range(last)]

    def heads():
        for i in range(last):
            model.exits[i](states[i], mask)

    def rules():
        rule = make_rule()
        rule.start(h.shape[0], model.num_layers, h.device)
        for i in range(last):
            rule.decide(LayerView(i + 1, model.num_layers, logits[i], states[i], mask))

    out = {}
    for name, run in (("heads", heads), ("rule", rules)):
        for _ in range(20):
            run()
        start = time.perf_counter()
        for _ in range(repeats):
            run()
        out[name] = (time.perf_counter() - start) / repeats
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--instances", type=int, default=128, help="dev instances, one per batch")
    p.add_argument("--methods", nargs="+", default=["pabee", "deebert"])
    args = p.parse_args(argv)

    from earlyexit.methods import METHODS

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = backbone_spec(args)
    task, _, dev = load_texts(args, args.instances)
    tokenizer = load_tokenizer(spec)
    meta = {"pad_id": tokenizer.pad_token_id}
    encoded = encode_examples(tokenizer, dev[:args.instances], 128, task.is_regression)
    rows = []
    for name in args.methods:
        method = METHODS[name]
        ctx = dynamic_context(method, task, spec, {"dev": encoded}, meta)
        timed = method.timed_model(ctx, None, method.never_exit_setting(task))
        runner = InferenceRunner(timed, meta["pad_id"], torch.device("cpu"))
        batches = runner.batches(encoded, 1)
        model = timed.model
        with torch.inference_mode():
            alone = isolated(model, timed.make_rule, batches[0])
        spent = dict.fromkeys(PARTS, 0.0)
        layers, exits, make_rule = model.layers, model.exits, timed.make_rule
        model.layers = torch.nn.ModuleList(Clocked(m, "layers", spent) for m in layers)
        model.exits = torch.nn.ModuleList(Clocked(m, "heads", spent) for m in exits)
        timed.make_rule = clocked_rule(make_rule, spent)
        reference = timed.reference(None)
        parts = {"method": [], "reference": []}

        def run(variant):
            def one(batch):
                before = dict(spent)
                start = time.perf_counter()
                timed.forward(batch) if variant == "method" else reference(batch)
                parts[variant].append([time.perf_counter() - start] + [spent[k] - before[k] for k in PARTS])
            return one

        # in the model's inference session, as bench_exit_overhead.py and the timing rule run it
        with torch.inference_mode(), timed.session():
            interleaved_by_batch({v: run(v) for v in parts}, batches, args.repeats)
        model.layers, model.exits, timed.make_rule = layers, exits, make_rule
        row = {"method": name, "batch_size": 1, "instances": len(batches), "threads": torch.get_num_threads()}
        for variant, per_batch in parts.items():
            # per instance: the median over the passes of each part's total (warm-up pass dropped)
            passes = np.array(per_batch[len(batches):]).reshape(args.repeats, len(batches), 1 + len(PARTS)).sum(1)
            total, *each = np.median(passes, axis=0) / len(batches)
            key = "with_exits" if variant == "method" else "reference"
            row[key] = {"total": float(total), **{k: float(v) for k, v in zip(PARTS, each)},
                        "rest": float(total - sum(each))}
        row["isolated_per_instance"] = alone
        row["extra_seconds_per_instance"] = row["with_exits"]["total"] - row["reference"]["total"]
        rows.append(row)
        print(row, flush=True)
    atomic_write_json(args.out, {
        "backbone": args.backbone, "task": task.name, "data": "ELUE " + args.task if args.data_dir else "synthetic",
        "threads": torch.get_num_threads(), "repeats": args.repeats, "torch": torch.__version__,
        "device": f"cpu {platform.machine()} ({torch.get_num_threads()} threads)",
        "command": "python " + " ".join(sys.argv), "rows": rows})


if __name__ == "__main__":
    main()
