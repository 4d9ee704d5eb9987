"""The run shared by the static baselines: a plain smaller classifier (earlyexit.models.plain),
fine-tuned on the one loop with dev selection, every token through all of its layers."""

from __future__ import annotations

from earlyexit.methods.base import RunContext, RunOutcome


def run_plain(ctx: RunContext, hf_model) -> RunOutcome:
    """Fine-tune `hf_model` (an HF *ForSequenceClassification), dev-select, test, count its cost:
    the token-exit run with every token at the model's last layer."""
    from earlyexit.methods._token_exit import fine_tune_token_model
    from earlyexit.models.plain import PlainSequenceClassifier, plain_dims

    model = PlainSequenceClassifier(hf_model, ctx.meta["pad_id"])
    return fine_tune_token_model(ctx, model, None, plain_dims(model.hf.config))
