"""FLOPs of one instance (no padding) for the full backbone and for token-level early exiting.

Two accountings, both reported (hashee-spec 6.2-6.3):

- `hashee_flops`: the exact matrix-multiply FLOPs (2 per multiply-add) of what our forward runs.
  At layer l with M active query tokens out of n real tokens:
    Q and attention-output projections 2*M*H^2 each, K and V 2*n*H^2 each (exited tokens are still
    keys/values, projected by every layer), scores and context 2*M*n*H each, FFN 4*M*H*I;
  plus the pooler (2*H^2, [CLS] only) and the classifier (2*H*C). Embedding look-ups, LayerNorm,
  softmax and activations are left out, exactly as torch's FlopCounterMode leaves them out, so the
  two can be compared (tests/test_flops.py).
- `elue_protocol_flops`: what ELUE's server computes from a `seq_len<TAB>num_layers` line: the
  ElasticBERT counter's MACs of a `depth`-layer model on `n` tokens (LayerNorm and softmax terms
  included), times 2. HashEE's depth for this protocol is the mean exit layer over the instance's
  tokens (a sentence-level approximation that ignores the K/V cost of exited tokens).
Speed-up = summed FLOPs of the full model over the evaluation set / summed FLOPs of the method, where
the full model is the paper's reference depth of the backbone family (12 layers of the same width,
the paper's and ELUE's convention) or, labelled as such, the run's own full-depth backbone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class ModelDims:
    hidden: int
    heads: int
    intermediate: int
    num_layers: int
    num_labels: int
    pooler: bool = True

    @classmethod
    def from_hf_config(cls, config) -> "ModelDims":
        return cls(hidden=config.hidden_size, heads=config.num_attention_heads,
                   intermediate=config.intermediate_size, num_layers=config.num_hidden_layers,
                   num_labels=config.num_labels, pooler=getattr(config, "model_type", "bert") != "roberta")


def layer_flops(n_tokens: int | np.ndarray, n_active: int | np.ndarray, d: ModelDims):
    """Matmul FLOPs of one layer with `n_active` queries attending over `n_tokens` keys."""
    h, i = d.hidden, d.intermediate
    projections = 2 * n_active * h * h * 2 + 2 * n_tokens * h * h * 2   # Q, O ; K, V
    attention = 2 * n_active * n_tokens * h * 2                          # scores, context
    ffn = 2 * n_active * h * i * 2
    return projections + attention + ffn


def head_flops(d: ModelDims) -> float:
    # RoBERTa's head has its own dense+tanh on <s>: the same cost as BERT's pooler.
    return 2 * d.hidden * d.hidden + 2 * d.hidden * d.num_labels


def hashee_flops(exit_layers: np.ndarray, d: ModelDims) -> float:
    """FLOPs of one instance whose real tokens exit at `exit_layers` (values 1..L)."""
    exit_layers = np.asarray(exit_layers)
    n = len(exit_layers)
    active = (exit_layers[None, :] >= np.arange(1, d.num_layers + 1)[:, None]).sum(1)
    return float(layer_flops(n, active, d).sum() + head_flops(d))


def full_flops(n_tokens: int, d: ModelDims) -> float:
    return hashee_flops(np.full(n_tokens, d.num_layers), d)


def elue_layer_macs(n: int, d: ModelDims) -> float:
    """ElasticBERT counter, one layer on n tokens: attention (with softmax and scaling terms),
    output projection, two LayerNorms, FFN (hashee-spec 6.1, FFN width generalised to I)."""
    h, heads, i = d.hidden, d.heads, d.intermediate
    attention = 3 * n * h * h + heads * (n * n + (h // heads) * n * n + n * n + (h // heads) * n * n)
    return attention + n * h * h + 4 * n * h + 2 * n * h * i


def elue_protocol_flops(n_tokens: int, depth: float, d: ModelDims) -> float:
    """2 x MACs of a `depth`-layer ElasticBERT on n tokens, as ELUE scores a tmp.txt line."""
    macs = 2 * n_tokens * d.hidden + depth * elue_layer_macs(n_tokens, d) + d.hidden * d.hidden + d.hidden * d.num_labels
    return 2.0 * macs


@dataclass(frozen=True)
class TokenExitCost:
    """Per instance of an evaluation set: real tokens, exact FLOPs, and the ELUE-protocol depth
    (the mean exit layer over the instance's tokens, spec 6.3)."""

    tokens: np.ndarray
    method_flops: np.ndarray
    elue_depth: np.ndarray


def token_exit_cost(instances_exit_layers: Iterable[np.ndarray], d: ModelDims) -> TokenExitCost:
    """The cost of token-level exits; each item holds the exit layers of one instance's real tokens."""
    exits = [np.asarray(layers) for layers in instances_exit_layers]
    return TokenExitCost(tokens=np.array([len(e) for e in exits], dtype=np.int64),
                         method_flops=np.array([hashee_flops(e, d) for e in exits], dtype=float),
                         elue_depth=np.array([float(e.mean()) for e in exits], dtype=float))


def speedup_record(tokens: np.ndarray, method_flops: np.ndarray, elue_depth: np.ndarray, d: ModelDims,
                   reference_layers: int) -> dict:
    """Speed-ups of a run over its test set, in both conventions, as the run record stores them.

    The paper's (and ELUE's) convention divides by the FLOPs of the `reference_layers`-deep model of
    the backbone family (12 for base-size families), so a 6-layer full model is already 2x; the
    other divides by the run's own full-depth model. Each is given for the exact token-level count
    and for the ELUE protocol (ratio of sums over the test set, spec 6.2-6.3).
    """
    tokens = np.asarray(tokens)
    if len(tokens) == 0:
        raise ValueError("speed-up of an empty evaluation set")
    reference = ModelDims(d.hidden, d.heads, d.intermediate, reference_layers, d.num_labels, d.pooler)
    method = float(np.sum(method_flops))
    elue_method = sum(elue_protocol_flops(n, depth, d) for n, depth in zip(tokens, elue_depth))
    own_full = sum(full_flops(n, d) for n in tokens)
    ref_full = sum(full_flops(n, reference) for n in tokens)
    elue_own = sum(elue_protocol_flops(n, d.num_layers, d) for n in tokens)
    elue_ref = sum(elue_protocol_flops(n, reference_layers, d) for n in tokens)
    count = len(tokens)
    return {
        "speedup": {
            "convention": f"FLOPs of the {reference_layers}-layer reference model of the backbone family / "
                          "FLOPs of this run (paper and ELUE convention); *_vs_own_full: against this "
                          f"backbone's own {d.num_layers}-layer full model",
            "reference_layers": reference_layers,
            "flops": ref_full / method,
            "elue": elue_ref / elue_method,
            "flops_vs_own_full": own_full / method,
            "elue_vs_own_full": elue_own / elue_method,
        },
        "flops": {"reference_per_instance": ref_full / count, "full_per_instance": own_full / count,
                  "method_per_instance": method / count},
    }


# --- dynamic (instance-level) early exit ------------------------------------------------------------

def exit_layer_flops(n_tokens: int, exit_layer: int, d: ModelDims) -> float:
    """Exact FLOPs of one instance of `n_tokens` real tokens that runs `exit_layer` layers on every
    token and then one head: the FLOPs of the `exit_layer`-layer model (internal exit classifiers
    not counted, as the ELUE protocol does not count them; see `exit_classifier_flops`)."""
    return float(exit_layer * layer_flops(n_tokens, n_tokens, d) + head_flops(d))


def dynamic_exit_cost(tokens: np.ndarray, exit_layers: np.ndarray, d: ModelDims) -> TokenExitCost:
    """The cost of instance-level exits: instance i has `tokens[i]` real tokens and stops after
    layer `exit_layers[i]` (1..L); its ELUE-protocol depth is that layer (spec 1.3)."""
    tokens, exit_layers = np.asarray(tokens, dtype=np.int64), np.asarray(exit_layers, dtype=np.int64)
    if len(tokens) != len(exit_layers):
        raise ValueError(f"{len(tokens)} token counts for {len(exit_layers)} exit layers")
    if len(exit_layers) and (exit_layers.min() < 1 or exit_layers.max() > d.num_layers):
        raise ValueError(f"exit layers must lie in 1..{d.num_layers}, got {exit_layers.min()}..{exit_layers.max()}")
    return TokenExitCost(tokens=tokens,
                         method_flops=np.array([exit_layer_flops(n, e, d) for n, e in zip(tokens, exit_layers)], dtype=float),
                         elue_depth=exit_layers.astype(float))


def fastbert_classifier_flops(n_tokens: int, d: ModelDims, width: int = 128) -> float:
    """Matmul FLOPs of one FastBERT classifier on n tokens (reported beside, not inside, the
    protocol's FLOPs; spec 1.3): Linear(H, w) on every token, K/V projections of every token and
    the Q/output projections of position 0, its attention over the n keys, then two small linears."""
    reduce = 2 * n_tokens * d.hidden * width
    projections = 2 * n_tokens * width * width * 2 + 2 * width * width * 2
    attention = 2 * n_tokens * width * 2
    return float(reduce + projections + attention + 2 * width * width + 2 * width * d.num_labels)
