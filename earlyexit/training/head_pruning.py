"""HeadPrune's two computations (Michel et al. 2019; baselines-spec 3.4): head importance from the
gradient of the loss with respect to head gates, and the iterative pruning plan that removes the
least important heads in fixed increments until the ELUE counter's speed-up reaches a target.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from earlyexit.data.batching import EncodedSplit, collate, evaluation_batches
from earlyexit.training.fine_tuning import classification_loss
from earlyexit.cost.flops import ModelDims, elue_equivalent_depth, elue_protocol_flops
from earlyexit.models.head_gates import HeadGates

IMPORTANCE_ABS = ("per_token", "per_batch")


def head_importance(model, split: EncodedSplit, *, pad_id: int, regression: bool, device: torch.device,
                    batch_size: int, absolute: str = "per_token", normalize: bool = True) -> np.ndarray:
    """[layers, heads] importance of each head on `split` (the training data, gold labels).

    `model` is an `EncoderClassifier` (eval mode: no dropout). For each head h the gate xi_h = 1
    gets the loss gradient; per_token (the authors' code): |dL/dxi_{h,t}| = |<dL/dctx_{h,t}, ctx_{h,t}>|
    per real token t, summed; per_batch (HF's port): |dL/dxi_h| per batch, summed. Both are divided
    by the number of real tokens, then (normalize) each layer's scores by their L2 norm, as the
    README's --normalize_pruning_by_layer (B10: unnormalised scores are wrong in the last layer).
    The loss is summed over the batch, so every example weighs the same whatever the batching.
    """
    if absolute not in IMPORTANCE_ABS:
        raise ValueError(f"importance absolute value {absolute!r}: one of {IMPORTANCE_ABS}")
    model.eval()
    gates = HeadGates(model.hf)
    scores = torch.zeros(len(gates.layers), max(gates.heads(i) for i in range(len(gates.layers))),
                         dtype=torch.float64)
    tokens = 0
    try:
        for indices in evaluation_batches(split, batch_size):
            batch = collate(split, indices, pad_id, model.num_layers).to(device)
            real = batch.schedule.key_mask[:, 0, 0, :]                            # [B, T]
            shape = tuple(real.shape) if absolute == "per_token" else ()
            gates.values = [torch.ones(*shape, gates.heads(i), device=device, requires_grad=True)
                            for i in range(len(gates.layers))]
            logits = model(batch.input_ids, batch.token_type_ids, batch.schedule)
            loss = classification_loss(logits, batch.labels, regression) * len(indices)
            grads = torch.autograd.grad(loss, gates.values)
            for i, grad in enumerate(grads):
                grad = grad.abs()
                if absolute == "per_token":
                    grad = (grad * real[..., None]).sum((0, 1))               # padding has no say
                scores[i, : grad.shape[-1]] += grad.double().cpu()
            tokens += int(real.sum())
    finally:
        gates.remove()
    scores /= tokens
    if normalize:
        scores /= scores.norm(dim=1, keepdim=True).clamp_min(1e-20)
    return scores.numpy()


def pruning_order(importance: np.ndarray) -> list[tuple[int, int]]:
    """(layer, head) from least to most important; ties broken by position (stable)."""
    flat = np.argsort(importance.reshape(-1), kind="stable")
    heads = importance.shape[1]
    return [(int(k // heads), int(k % heads)) for k in flat]


def kept_heads(order: list[tuple[int, int]], removed: int, num_layers: int, heads: int) -> list[list[int]]:
    """The heads each layer keeps once the first `removed` heads of `order` are gone."""
    gone = set(order[:removed])
    return [[h for h in range(heads) if (layer, h) not in gone] for layer in range(num_layers)]


def counter_speedup(lengths: np.ndarray, dims: ModelDims, layer_heads) -> float:
    """ELUE-counter speed-up of the model keeping `layer_heads` heads per layer over the same model
    with every head, on instances of `lengths` tokens (a ratio of sums, as the run record's
    elue_vs_own_full)."""
    pruned = dataclasses.replace(dims.unpruned, layer_heads=tuple(int(k) for k in layer_heads))
    full = sum(elue_protocol_flops(int(n), dims.num_layers, dims) for n in lengths)
    return full / sum(elue_protocol_flops(int(n), elue_equivalent_depth(int(n), pruned), dims) for n in lengths)


@dataclass(frozen=True)
class PruningStep:
    removed: int              # heads removed in all
    fraction: float           # of all heads
    keep: list                # per layer, the heads kept (original indices)
    speedup: float            # ELUE-counter speed-up over the unpruned model, on the given lengths


def pruning_plan(importance: np.ndarray, dims: ModelDims, lengths: np.ndarray, target: float,
                 step_fraction: float) -> list[PruningStep]:
    """The cumulative steps of `step_fraction` of all heads (5%, 10%, ... of them), least important
    first, up to the first step whose speed-up reaches `target` (or every head, if none does)."""
    if not 0 < step_fraction <= 1:
        raise ValueError(f"pruning step fraction {step_fraction}: must lie in (0, 1]")
    num_layers, heads = importance.shape
    total = num_layers * heads
    order = pruning_order(importance)
    steps, j = [], 0
    while not steps or (steps[-1].speedup < target and steps[-1].removed < total):
        j += 1
        removed = min(total, int(round(j * step_fraction * total)))
        if removed == 0 or (steps and removed == steps[-1].removed):
            continue          # an increment smaller than one head (few heads in all)
        keep = kept_heads(order, removed, num_layers, heads)
        steps.append(PruningStep(removed, removed / total, keep,
                                 counter_speedup(lengths, dims, [len(k) for k in keep])))
    return steps
