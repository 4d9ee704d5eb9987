"""What the static methods built on the fine-tuned full model share (HeadPrune, BERT-of-Theseus):
the artifact that names the full model's selected weights, loading them, full-depth batches, saving
a run's weights, and the cost of a model that runs every token through all of its layers."""

from __future__ import annotations

import numpy as np

from earlyexit.methods.base import RunContext

ARTIFACT = "full_model"


def full_model_artifact(seed: int) -> dict:
    """The selected weights of the full model's run on the same task x backbone x seed."""
    return {ARTIFACT: {"kind": "checkpoint", "method": "full", "variant": "default", "seed": seed}}


def load_full_model(ctx: RunContext):
    """The fine-tuned full model: the backbone's classifier with the full run's selected weights."""
    import torch

    from earlyexit.models.backbones import load_classifier

    if ARTIFACT not in ctx.artifacts:
        raise ValueError(f"method needs artifact {ARTIFACT!r} (the full model's weights); got {sorted(ctx.artifacts)}")
    hf = load_classifier(ctx.backbone, ctx.task.num_labels, ctx.seed)
    hf.load_state_dict(torch.load(ctx.artifacts[ARTIFACT], map_location="cpu", weights_only=True))
    return hf


def attach_full_depth(ctx: RunContext, num_layers: int) -> None:
    """Every token at the last layer (the batches' padding layout; nothing exits)."""
    from earlyexit.data.batching import attach_exit_layers

    for index, name in enumerate(("train", "dev", "test")):
        attach_exit_layers(ctx.splits[name], None, num_layers, np.random.default_rng([ctx.seed, index]))


def save_weights(ctx: RunContext, hf_model) -> None:
    if ctx.checkpoint:
        import torch

        from earlyexit.plumbing.files import atomic_path

        with atomic_path(ctx.checkpoint) as tmp:
            torch.save(hf_model.state_dict(), tmp)


def static_cost(lengths: np.ndarray, dims) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens, exact FLOPs, ELUE-protocol depth) per instance of a model that runs all its layers;
    with pruned heads (dims.layer_heads) the depth is the one ELUE's full-width counter must be
    told to count the pruned model's MACs (flops.elue_equivalent_depth)."""
    from earlyexit.cost.flops import elue_equivalent_depth, full_flops

    tokens = np.asarray(lengths, dtype=np.int64)
    flops = np.array([full_flops(int(n), dims) for n in tokens], dtype=float)
    if dims.layer_heads is None:
        depth = np.full(len(tokens), float(dims.num_layers))
    else:
        depth = np.array([elue_equivalent_depth(int(n), dims) for n in tokens], dtype=float)
    return tokens, flops, depth
