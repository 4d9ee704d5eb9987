"""What a method hands the timing rule: its trained model at its operating point, as a `TimedModel`.

The timing rule has one runner (earlyexit.cost.timing.InferenceRunner): it builds every method's padded
batches the same way (earlyexit.data.batching.collate, on the device before the clock starts), runs
`forward` on each, copies the predictions to the host and counts the pass's cost with `cost`. A
method says only what is its own: the per-token exit layers its batches carry (`prepare`), how one
batch runs, and what a pass cost. Every model runs its backbone's fast linear path
(earlyexit/models/fast_linear.py).

Methods build theirs in `Method.timed_model` (earlyexit/methods/base.py): the full model and
HashEE in methods/_token_exit.py, the multi-exit methods in methods/_dynamic.py, CascadeBERT's
cascade in methods/cascadebert.py. The overhead benchmark (benchmarks/bench_exit_overhead.py) also
asks a dynamic method's timed model for a forced exit layer (`exiting_at`) and for the plain forward
the overhead is measured against (`reference`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:   # torch is imported where a model runs: the methods registry imports this module cheaply
    import torch
    from torch import nn


class TimedModel:
    """Base: a model in eval mode; subclasses define `forward` and `cost`.

    `num_layers`: the layers of the batches' exit schedules (collate); `dims` (earlyexit.cost.flops.
    ModelDims): the model the FLOPs speed-ups are counted against (the own full model)."""

    def __init__(self, model: nn.Module, num_layers: int, dims):
        self.model, self.num_layers, self.dims = model.eval(), num_layers, dims

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> "TimedModel":
        """On `device`, with its floating-point weights in `dtype` when given (bf16 inference)."""
        self.model.to(device)
        if dtype is not None:
            self.model.to(dtype)
        return self

    def prepare(self, split):
        """The split the batches are cut from, with every token's exit layer (a copy: the caller's
        split is left as it is). Default: every token runs every layer."""
        from earlyexit.data.batching import attach_exit_layers

        return attach_exit_layers(dataclasses.replace(split, exit_layers=None), None, self.num_layers, None)

    def session(self):
        """The context every timed pass runs in (the runner enters it once around all of them): the
        model's inference session where it has one (earlyexit/models/inference_session.py: per-batch
        functions built once), else nothing."""
        open_session = getattr(self.model, "inference_session", None)
        return open_session() if open_session is not None else contextlib.nullcontext()

    def forward(self, batch) -> tuple[torch.Tensor, np.ndarray | None]:
        """One batch (earlyexit.data.batching.Batch, on the device): logits [B, C] on the device, and per
        row what `cost` needs on the host (exit layers, escalations; None when the batch says it)."""
        raise NotImplementedError

    def cost(self, split, per_row: np.ndarray | None):
        """earlyexit.cost.flops.TokenExitCost of one pass over the prepared `split`, given `forward`'s
        per-row outputs gathered in split order (None when forward gives none)."""
        raise NotImplementedError

    # --- the overhead benchmark's questions (dynamic methods) ---------------------------------------
    def exit_points(self) -> list[int]:
        """The layers after which a row can leave (none by default)."""
        return []

    def exiting_at(self, layer: int) -> "TimedModel":
        """The same model where every row leaves at `layer` (one of `exit_points`)."""
        raise NotImplementedError(f"{type(self).__name__}: no forced exit")

    def reference(self, layer: int | None) -> Callable[[Any], torch.Tensor]:
        """The plain forward (batch -> logits) that exiting is compared with: the own full forward
        (None), or the model truncated to its first `layer` layers."""
        raise NotImplementedError(f"{type(self).__name__}: no reference forward")


class PlainHF(TimedModel):
    """A HF *ForSequenceClassification model through its own forward with PyTorch's default
    kernels: the timing figure's reference point (the full model's weights, no fast path)."""

    def __init__(self, hf_model: nn.Module):
        import copy

        from earlyexit.cost.flops import ModelDims
        from earlyexit.models.fast_linear import set_fast_linears

        plain = copy.deepcopy(hf_model)
        set_fast_linears(plain, False)
        super().__init__(plain, plain.config.num_hidden_layers, ModelDims.from_hf_config(plain.config))

    def forward(self, batch):
        return self.model(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids,
                          attention_mask=batch.attention_mask).logits, None

    def cost(self, split, per_row):
        from earlyexit.cost.flops import token_exit_cost

        return token_exit_cost(split.exit_layers, self.dims)
