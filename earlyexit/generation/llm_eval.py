"""One operating point of a decoder LM with token-level exits, scored on a split: greedy generation
at batch 1 (as the released inference), ROUGE of the outputs, and the cost of every generated token
(exact FLOPs incl. K/V filling and the exit rule; speed-up against the full model on the same
positions; mean exit layer; wall-clock tokens per second)."""

from __future__ import annotations

import statistics

import numpy as np
import torch

from earlyexit.cost.flops import DecoderDims, decoder_token_flops
from earlyexit.generation.llm_data import LMSplit
from earlyexit.generation.rouge import rouge
from earlyexit.cost.timing import device_description, time_passes


@torch.no_grad()
def score_point(model, split: LMSplit, tokenizer, *, rule_kind: str, rule, setting: dict, max_new_tokens: int,
                kv_mode: str, device, timing: dict, depth: int | None = None, own_head: bool = False,
                limit: int | None = None, synthetic: bool = False) -> dict:
    """Generate for every example (the first `limit`), score and count; one JSON-able point.
    `timing`: {"warmup", "repeats"} passes of earlyexit.cost.timing.time_passes (tokens/s: the median)."""
    from earlyexit.data.llm_tasks import token_kinds

    model.eval()
    dims = DecoderDims.from_hf_config(model.hf.config, model.policy_kind, model.policy_width)
    L = depth or model.num_layers
    n = len(split) if limit is None else min(limit, len(split))
    prompts = [torch.as_tensor(split.prompts[i], device=device) for i in range(n)]    # outside the clock

    def one_pass():
        return [model.generate(p, max_new_tokens, rule, kv_mode=kv_mode, eos_id=tokenizer.eos_id, own_head=own_head,
                               depth=depth) for p in prompts]

    # the suite's timing path: untimed warm-up passes, then the median of the timed ones (CUDA synced)
    seconds, outputs = time_passes(one_pass, warmup=timing["warmup"], repeats=timing["repeats"],
                                   device=torch.device(device))
    texts, flops, full, exits, tokens = [], 0.0, 0.0, [], 0
    easy_exits, hard_exits, exact = [], [], []
    for i, out in enumerate(outputs):
        texts.append(tokenizer.decode(out.tokens))
        flops += float(decoder_token_flops(out.context, out.exit_layers, dims, rule_kind, kv_mode, depth).sum())
        full += float(decoder_token_flops(out.context, [dims.num_layers] * len(out.tokens), dims, "none").sum())
        exits += out.exit_layers
        tokens += len(out.tokens)
        if synthetic:                 # exits of the easy / the context tokens the model emitted
            kinds = token_kinds(tokenizer.decode(out.tokens).split())
            if len(kinds) == len(out.tokens) - (out.tokens[-1] == tokenizer.eos_id):
                easy_exits += [e for e, k in zip(out.exit_layers, kinds) if k]
                hard_exits += [e for e, k in zip(out.exit_layers, kinds) if not k]
            exact.append(texts[-1] == split.references[i])
    scores = rouge(texts, split.references[:n], "en")
    point = {
        "setting": setting, "rule": rule_kind, "kv_mode": kv_mode, "depth": L,
        "rouge1": scores["rouge1"], "rouge2": scores["rouge2"], "rougeL": scores["rougeL"],
        "rougeL_variant": scores["rougeL_variant"],
        "speedup": full / flops, "flops_per_token": flops / tokens, "full_flops_per_token": full / tokens,
        "mean_exit_layer": float(np.mean(exits)), "generated_tokens": tokens, "instances": n,
        "tokens_per_second": tokens / statistics.median(seconds), "timing": {**device_description(torch.device(device)),
                                                                         **timing}, "examples": [{"prediction": t, "reference": r}
                                                            for t, r in zip(texts[:3], split.references[:3])],
    }
    if synthetic:
        point["exact_match"] = 100.0 * float(np.mean(exact))
        point["mean_exit_easy"] = float(np.mean(easy_exits)) if easy_exits else None
        point["mean_exit_context"] = float(np.mean(hard_exits)) if hard_exits else None
    return point
