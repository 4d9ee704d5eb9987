"""The run shared by the full model and HashEE: a BERT-family classifier driven by
`HashEEForSequenceClassification` with an exit layer per token, fine-tuned on the one loop.
The full model is the case where every token exits at the last layer (tested to equal the plain
backbone); its cost is then the full model's."""

from __future__ import annotations

import numpy as np

from earlyexit.cost.inference import TimedModel
from earlyexit.methods.base import Method, RunContext, RunOutcome


class TokenExitMethod(Method):
    """The full model and HashEE: their runs save the backbone's classifier (the HF model); timed as
    a TokenExitModel (timed_token_model), every token at its exit layer."""

    def build(self, ctx: RunContext):
        from earlyexit.models.backbones import load_classifier

        return load_classifier(ctx.backbone, ctx.task.num_labels, ctx.seed)


def run_token_exit(ctx: RunContext, token_hash) -> RunOutcome:
    """Fine-tune with `token_hash` (None: every token at the last layer), dev-select, test, cost.
    A summarization task runs the seq2seq model instead (the hash exits its encoder's tokens)."""
    if ctx.task.kind == "summarization":
        from earlyexit.methods._seq2seq_exit import run_seq2seq_exit

        return run_seq2seq_exit(ctx, token_hash)
    from earlyexit.models.backbones import load_classifier
    from earlyexit.cost.flops import ModelDims
    from earlyexit.models.hashee import HashEEForSequenceClassification

    model = HashEEForSequenceClassification(load_classifier(ctx.backbone, ctx.task.num_labels, ctx.seed))
    return fine_tune_token_model(ctx, model, token_hash, ModelDims.from_hf_config(model.hf.config))


def fine_tune_token_model(ctx: RunContext, model, token_hash, dims) -> RunOutcome:
    """The one fine-tune of a token-batched classifier (`model.hf` the HF model it wraps): every
    token's exit layer from `token_hash` (None: the last layer), dev selection on the one loop, the
    selected weights saved to ctx.checkpoint, the test cost counted with `dims`."""
    import torch

    from earlyexit.data.batching import attach_exit_layers
    from earlyexit.training.fine_tuning import fine_tune
    from earlyexit.cost.flops import token_exit_cost
    from earlyexit.plumbing.files import atomic_path

    for index, name in enumerate(("train", "dev", "test")):
        # Per-split rng: rand-incons draws are fixed per (seed, split), like the authors' preprocessing.
        attach_exit_layers(ctx.splits[name], token_hash, model.num_layers, np.random.default_rng([ctx.seed, index]))
    result = fine_tune(model, ctx.splits["train"], ctx.splits["dev"], ctx.splits["test"], metric=ctx.task.metric,
                       regression=ctx.task.is_regression, cfg=ctx.train_config, seed=ctx.seed,
                       pad_id=ctx.meta["pad_id"], device=ctx.device, progress=ctx.progress,
                       state=ctx.train_state)
    if ctx.checkpoint:
        with atomic_path(ctx.checkpoint) as tmp:
            torch.save(model.hf.state_dict(), tmp)
    exits = ctx.splits["test"].exit_layers
    cost = token_exit_cost(exits, dims)
    return RunOutcome.from_fine_tune(
        result, method_flops=cost.method_flops, elue_depth=cost.elue_depth, tokens=cost.tokens, dims=dims,
        extra={"mean_exit_layer": float(np.mean([np.mean(e) for e in exits]))})


def timed_token_model(ctx: RunContext, checkpoint: str | None, token_hash):
    """The full model (`token_hash` None) or HashEE with the weights its run saved (None: as built),
    for the timing rule (earlyexit.cost.timing)."""
    import torch

    from earlyexit.models.backbones import load_classifier
    from earlyexit.models.hashee import HashEEForSequenceClassification

    hf = load_classifier(ctx.backbone, ctx.task.num_labels, ctx.seed)
    if checkpoint is not None:
        hf.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return TokenExitModel(HashEEForSequenceClassification(hf), token_hash, ctx.seed)


class TokenExitModel(TimedModel):
    """`HashEEForSequenceClassification` with every token's exit layer from `token_hash` (None: the
    last layer), drawn as the run drew its test split's."""

    def __init__(self, model, token_hash, seed: int):
        from earlyexit.cost.flops import ModelDims

        super().__init__(model, model.num_layers, ModelDims.from_hf_config(model.hf.config))
        self.token_hash, self.seed = token_hash, seed

    def prepare(self, split):
        import dataclasses

        from earlyexit.data.batching import attach_exit_layers

        # rng [seed, 2]: the test split's draws of rand-incons in the run (fine_tune_token_model)
        return attach_exit_layers(dataclasses.replace(split, exit_layers=None), self.token_hash, self.num_layers,
                                  np.random.default_rng([self.seed, 2]))

    def forward(self, batch):
        return self.model(batch.input_ids, batch.token_type_ids, batch.schedule), None

    def cost(self, split, per_row):
        from earlyexit.cost.flops import token_exit_cost

        return token_exit_cost(split.exit_layers, self.dims)
