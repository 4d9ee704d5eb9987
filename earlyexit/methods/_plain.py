"""The run shared by the static baselines: a plain smaller classifier (earlyexit.models.plain),
fine-tuned on the one loop with dev selection, every token through all of its layers."""

from __future__ import annotations

import numpy as np

from earlyexit.methods.base import RunContext, RunOutcome


def run_plain(ctx: RunContext, hf_model) -> RunOutcome:
    """Fine-tune `hf_model` (an HF *ForSequenceClassification), dev-select, test, count its cost."""
    import torch

    from earlyexit.batching import attach_exit_layers
    from earlyexit.fine_tuning import fine_tune
    from earlyexit.flops import token_exit_cost
    from earlyexit.models.plain import PlainSequenceClassifier, plain_dims
    from earlyexit.plumbing.files import atomic_path

    model = PlainSequenceClassifier(hf_model, ctx.meta["pad_id"])
    for index, name in enumerate(("train", "dev", "test")):
        # every token at the model's last layer: the batches' padding layout and the FLOPs count
        attach_exit_layers(ctx.splits[name], None, model.num_layers, np.random.default_rng([ctx.seed, index]))
    result = fine_tune(model, ctx.splits["train"], ctx.splits["dev"], ctx.splits["test"], metric=ctx.task.metric,
                       regression=ctx.task.is_regression, cfg=ctx.train_config, seed=ctx.seed,
                       pad_id=ctx.meta["pad_id"], device=ctx.device, progress=ctx.progress,
                       state=ctx.train_state)
    if ctx.checkpoint:
        with atomic_path(ctx.checkpoint) as tmp:
            torch.save(model.hf.state_dict(), tmp)
    dims = plain_dims(model.hf.config)
    cost = token_exit_cost(ctx.splits["test"].exit_layers, dims)
    return RunOutcome(
        dev=result["dev"], test=result["test"], best_on_test=result["best_on_test"],
        selected_step=result["selected_step"], history=result["history"],
        train_seconds=result["train_seconds"], eval_seconds=result["eval_seconds"],
        method_flops=cost.method_flops, elue_depth=cost.elue_depth, tokens=cost.tokens, dims=dims,
        extra={"mean_exit_layer": float(model.num_layers)},
    )
