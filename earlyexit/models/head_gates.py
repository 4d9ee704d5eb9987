"""Attention heads of a HF BERT-family encoder: gates on them, and their physical removal.

transformers v5 has no `head_mask` and no `prune_heads` (baselines-spec 1.5, 3.4), so both are here:
- `HeadGates`: a forward pre-hook on each layer's `attention.output.dense` multiplies the slice of
  its input that belongs to head h (the head's context vector, before the output projection) by a
  gate xi_h. A gate is a [heads] vector (per head) or a [B, T, heads] tensor (per head and token);
  with requires_grad it gives the head importance scores of HeadPrune.
- `prune_heads`: slices the heads out of the query/key/value output rows and the output projection's
  input columns, so a pruned model costs less. A layer left with no head keeps its residual,
  LayerNorm and FFN: its attention block then adds only the output projection's bias.
A pruned model equals the gated model with the removed heads' gates at 0 (tests/test_head_gates.py).
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn


def encoder_layers(hf_model: nn.Module) -> nn.ModuleList:
    return hf_model.base_model.encoder.layer


class HeadGates:
    """Per-layer head gates on a HF model; `values[i]` None leaves layer i as it is. Use as a
    context manager (or call `remove`) so the hooks do not outlive their use."""

    def __init__(self, hf_model: nn.Module):
        self.layers = encoder_layers(hf_model)
        self.values: list[torch.Tensor | None] = [None] * len(self.layers)
        self._handles = [layer.attention.output.dense.register_forward_pre_hook(self._hook(index))
                         for index, layer in enumerate(self.layers)]

    def _hook(self, index: int):
        def scale_heads(module, args):
            gate = self.values[index]
            if gate is None:
                return None
            (x,) = args
            heads = gate.shape[-1]
            per_head = x.view(*x.shape[:-1], heads, x.shape[-1] // heads)
            return ((per_head * gate.unsqueeze(-1).to(x.dtype)).reshape(x.shape),)
        return scale_heads

    def heads(self, index: int) -> int:
        return self.layers[index].attention.self.num_attention_heads

    def set_mask(self, keep: Sequence[Sequence[int]]) -> None:
        """Gates 1 on the heads in keep[i], 0 on the others (masking, not removal)."""
        for index, kept in enumerate(keep):
            device = self.layers[index].attention.output.dense.weight.device
            gate = torch.zeros(self.heads(index), device=device)
            gate[list(kept)] = 1.0
            self.values[index] = gate

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> "HeadGates":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class NoHeads(nn.Module):
    """The self-attention of a layer whose every head was pruned: a context of width 0."""

    num_attention_heads = 0
    all_head_size = 0

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        return hidden_states.new_zeros(*hidden_states.shape[:-1], 0), None


def _slice_linear(linear: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    """A copy of `linear` keeping output rows (dim 0) or input columns (dim 1) `index`."""
    new = copy.deepcopy(linear)
    index = index.to(linear.weight.device)
    new.weight = nn.Parameter(linear.weight.detach().index_select(dim, index).clone(),
                              requires_grad=linear.weight.requires_grad)
    if dim == 0:
        new.out_features = len(index)
        if linear.bias is not None:
            new.bias = nn.Parameter(linear.bias.detach().index_select(0, index).clone(),
                                    requires_grad=linear.bias.requires_grad)
    else:
        new.in_features = len(index)
    return new


def prune_heads(hf_model: nn.Module, keep: Sequence[Sequence[int]]) -> list[int]:
    """Keep only heads keep[i] of layer i (indices into its current heads); returns heads per layer."""
    layers = encoder_layers(hf_model)
    if len(keep) != len(layers):
        raise ValueError(f"prune_heads: {len(keep)} head lists for {len(layers)} layers")
    for layer, kept in zip(layers, keep):
        attention = layer.attention.self
        heads = attention.num_attention_heads
        kept = sorted(set(int(h) for h in kept))
        if any(h < 0 or h >= heads for h in kept):
            raise ValueError(f"prune_heads: head indices {kept} outside 0..{heads - 1}")
        if len(kept) == heads:
            continue
        size = attention.attention_head_size
        index = torch.tensor([h * size + j for h in kept for j in range(size)], dtype=torch.long)
        layer.attention.output.dense = _slice_linear(layer.attention.output.dense, index, dim=1)
        if not kept:
            layer.attention.self = NoHeads()
            continue
        for name in ("query", "key", "value"):
            setattr(attention, name, _slice_linear(getattr(attention, name), index, dim=0))
        attention.num_attention_heads = len(kept)
        attention.all_head_size = len(kept) * size
    return [layer.attention.self.num_attention_heads for layer in layers]
