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

import dataclasses
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
    # Heads kept in each layer after head pruning (HeadPrune); None: all `heads` in every layer.
    layer_heads: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.layer_heads is not None and (len(self.layer_heads) != self.num_layers or
                                             not all(0 <= k <= self.heads for k in self.layer_heads)):
            raise ValueError(f"layer_heads {self.layer_heads}: need {self.num_layers} counts in 0..{self.heads}")

    @classmethod
    def from_hf_config(cls, config, layer_heads=None) -> "ModelDims":
        return cls(hidden=config.hidden_size, heads=config.num_attention_heads,
                   intermediate=config.intermediate_size, num_layers=config.num_hidden_layers,
                   num_labels=config.num_labels, pooler=getattr(config, "model_type", "bert") != "roberta",
                   layer_heads=None if layer_heads is None else tuple(int(k) for k in layer_heads))

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def unpruned(self) -> "ModelDims":
        """The same model with every head."""
        return dataclasses.replace(self, layer_heads=None)

    def kept_heads(self) -> np.ndarray:
        """Heads per layer, [num_layers]."""
        return np.array(self.layer_heads if self.layer_heads is not None else [self.heads] * self.num_layers)


def layer_flops(n_tokens: int | np.ndarray, n_active: int | np.ndarray, d: ModelDims,
                width: int | np.ndarray | None = None):
    """Matmul FLOPs of one layer with `n_active` queries attending over `n_tokens` keys; `width` is
    the attention width (kept heads x head size; default: every head, = hidden)."""
    h, i = d.hidden, d.intermediate
    a = h if width is None else width
    projections = 2 * n_active * h * a * 2 + 2 * n_tokens * h * a * 2   # Q, O ; K, V
    attention = 2 * n_active * n_tokens * a * 2                          # scores, context
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
    return float(layer_flops(n, active, d, d.kept_heads() * d.head_dim).sum() + head_flops(d))


def full_flops(n_tokens: int, d: ModelDims) -> float:
    return hashee_flops(np.full(n_tokens, d.num_layers), d)


def elue_layer_macs(n: int, d: ModelDims, heads: int | None = None) -> float:
    """ElasticBERT counter, one layer on n tokens: attention (with softmax and scaling terms),
    output projection, two LayerNorms, FFN (hashee-spec 6.1, FFN width generalised to I). With
    `heads` kept of d.heads, the counter reads the reduced head count and all_head_size, as it does
    for a pruned model (baselines-spec 3.4); default: every head."""
    h, i, dh = d.hidden, d.intermediate, d.head_dim
    heads = d.heads if heads is None else heads
    a = heads * dh                                                      # all_head_size
    attention = 3 * n * h * a + heads * (n * n + dh * n * n + n * n + dh * n * n)
    return attention + n * a * h + 4 * n * h + 2 * n * h * i


def elue_equivalent_depth(n: int, d: ModelDims) -> float:
    """The depth a `seq_len<TAB>depth` line must state for ELUE's full-width counter to give the
    counter's MACs of a head-pruned model (its layers summed with their own head counts): the
    protocol has no field for heads, but its cost is linear in depth."""
    return float(sum(elue_layer_macs(n, d, int(k)) for k in d.kept_heads()) / elue_layer_macs(n, d))


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
    own_full = sum(full_flops(n, d.unpruned) for n in tokens)     # the backbone with every head
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


# --- seq2seq (HashEE on a BART-family encoder; baselines-spec section 4) ----------------------
# Matmul FLOPs as above (2 per multiply-add; embeddings, LayerNorms, softmax and biases left out,
# as FlopCounterMode leaves them out). Encoder: the token-level count of `layer_flops` with the
# encoder's widths, no head. Decoder, for T generated tokens (T forward steps, the first fed the
# start token) over S source tokens, per layer and step t (the prefix holds t tokens, with a cache):
#   self-attention Q, K, V, O of the new token 4*2*H^2, its scores and context over t keys 2*2*t*H;
#   cross-attention Q, O 2*2*H^2, scores and context over S source tokens 2*2*S*H; FFN 2*2*H*I;
# plus the cross-attention K/V of the source memory once per sequence, 2*2*S*H^2 per layer, and the
# LM head 2*H*V per step. Beam search runs every step for each of its beams: beam-weighted decoder
# FLOPs are num_beams times the greedy-equivalent ones for the same output length.

@dataclass(frozen=True)
class Seq2SeqDims:
    hidden: int
    heads: int
    encoder_ffn: int
    decoder_ffn: int
    encoder_layers: int
    decoder_layers: int
    vocab: int

    @classmethod
    def from_hf_config(cls, config) -> "Seq2SeqDims":
        return cls(hidden=config.d_model, heads=config.encoder_attention_heads, encoder_ffn=config.encoder_ffn_dim,
                   decoder_ffn=config.decoder_ffn_dim, encoder_layers=config.encoder_layers,
                   decoder_layers=config.decoder_layers, vocab=config.vocab_size)

    @property
    def num_layers(self) -> int:       # the depth the exit layers index (the encoder's), as ModelDims
        return self.encoder_layers

    def with_depth(self, encoder_layers: int, decoder_layers: int) -> "Seq2SeqDims":
        return Seq2SeqDims(self.hidden, self.heads, self.encoder_ffn, self.decoder_ffn, encoder_layers,
                           decoder_layers, self.vocab)

    def encoder_dims(self) -> ModelDims:
        return ModelDims(self.hidden, self.heads, self.encoder_ffn, self.encoder_layers, 0, pooler=False)


def encoder_flops(exit_layers: np.ndarray, d: Seq2SeqDims) -> float:
    """Encoder FLOPs of one source whose real tokens exit at `exit_layers` (values 1..encoder_layers)."""
    exit_layers = np.asarray(exit_layers)
    active = (exit_layers[None, :] >= np.arange(1, d.encoder_layers + 1)[:, None]).sum(1)
    return float(layer_flops(len(exit_layers), active, d.encoder_dims()).sum())


def decoder_flops(source_tokens: int, generated: int, d: Seq2SeqDims) -> float:
    """Decoder FLOPs (greedy-equivalent) of `generated` steps over `source_tokens` source tokens."""
    h, s, t = d.hidden, source_tokens, generated
    per_step = 2 * 4 * h * h + 2 * 2 * h * h + 2 * 2 * s * h + 2 * 2 * h * d.decoder_ffn   # all but self-attention
    self_attention = 2 * 2 * h * t * (t + 1) // 2                                        # sum over t of 4*t*H
    cross_kv = 2 * 2 * s * h * h
    return float(d.decoder_layers * (t * per_step + self_attention + cross_kv) + t * 2 * h * d.vocab)


def seq2seq_speedup_record(exit_layers: list[np.ndarray], generated: np.ndarray, d: Seq2SeqDims,
                           reference: Seq2SeqDims, num_beams: int) -> dict:
    """Enc., Dec. and Total speed-ups of a run over its test set against the full `reference` model
    (the untruncated backbone with every token at its last encoder layer) on the same sources and
    output lengths, as the summarization table reports them; Total greedy-equivalent and
    beam-weighted (decoder cost x num_beams, the same factor for both models)."""
    generated = np.asarray(generated)
    if len(generated) == 0:
        raise ValueError("speed-up of an empty evaluation set")
    sources = [len(e) for e in exit_layers]
    enc = np.array([encoder_flops(e, d) for e in exit_layers])
    enc_ref = np.array([encoder_flops(np.full(n, reference.encoder_layers), reference) for n in sources])
    dec = np.array([decoder_flops(n, t, d) for n, t in zip(sources, generated)])
    dec_ref = np.array([decoder_flops(n, t, reference) for n, t in zip(sources, generated)])
    own_full = sum(encoder_flops(np.full(n, d.encoder_layers), d) for n in sources) + dec.sum()
    count = len(generated)
    return {
        "speedup": {
            "convention": "FLOPs of the full model (the untruncated backbone, every source token at its last "
                          f"encoder layer: {reference.encoder_layers} encoder / {reference.decoder_layers} decoder "
                          "layers) on the same sources and output lengths / FLOPs of this run; total_beam: "
                          f"decoder FLOPs of both weighted by the beam size ({num_beams})",
            "reference_layers": reference.encoder_layers,
            "reference_decoder_layers": reference.decoder_layers,
            "num_beams": num_beams,
            "enc": float(enc_ref.sum() / enc.sum()),
            "dec": float(dec_ref.sum() / dec.sum()),
            "total": float((enc_ref.sum() + dec_ref.sum()) / (enc.sum() + dec.sum())),
            "total_beam": float((enc_ref.sum() + num_beams * dec_ref.sum()) / (enc.sum() + num_beams * dec.sum())),
            "flops": float((enc_ref.sum() + dec_ref.sum()) / (enc.sum() + dec.sum())),
            "flops_vs_own_full": float(own_full / (enc.sum() + dec.sum())),
        },
        "flops": {"encoder_per_instance": float(enc.sum() / count), "decoder_per_instance": float(dec.sum() / count),
                  "reference_encoder_per_instance": float(enc_ref.sum() / count),
                  "reference_decoder_per_instance": float(dec_ref.sum() / count),
                  "method_per_instance": float((enc.sum() + dec.sum()) / count),
                  "mean_generated_tokens": float(generated.mean()), "mean_source_tokens": float(np.mean(sources))},
    }


# --- decoder LMs with token-level exits while generating (earlyexit/models/multi_exit_lm.py) ---
# One generated token at a position with `context` keys (itself included) that leaves at layer e of
# L: e full layers (Q, K, V, O projections with grouped K/V heads, scores and context over `context`
# keys, the gated FFN's three matrices), then the K/V projections of the L - e skipped layers when
# they are filled ("fill"; "copy" costs nothing), the exit rule at every layer it is asked (layers
# 1..min(e, L-1): a policy, or CALM's LM head whose logits the exit then reuses) and the LM head
# 2*H*V. Matmul FLOPs only, as torch's FlopCounterMode counts them (tests/test_llm_model.py).
EXIT_RULE_KINDS = ("none", "policy", "confidence")


@dataclass(frozen=True)
class DecoderDims:
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    num_layers: int
    vocab: int
    policy_width: int = 0           # 0: the released Linear(H, 1) policy; else the MLP's width

    @classmethod
    def from_hf_config(cls, config, policy: str = "linear", policy_width: int = 32) -> "DecoderDims":
        return cls(hidden=config.hidden_size, heads=config.num_attention_heads,
                   kv_heads=config.num_key_value_heads,
                   head_dim=getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
                   intermediate=config.intermediate_size, num_layers=config.num_hidden_layers,
                   vocab=config.vocab_size, policy_width=0 if policy == "linear" else policy_width)

    def kv_flops(self) -> int:
        return 2 * 2 * self.hidden * self.kv_heads * self.head_dim

    def layer_flops(self, context: int | np.ndarray):
        h, a = self.hidden, self.heads * self.head_dim
        return 2 * 2 * h * a + self.kv_flops() + 2 * 2 * context * a + 3 * 2 * h * self.intermediate

    def policy_flops(self) -> int:
        w = self.policy_width
        return 2 * self.hidden if w == 0 else 2 * self.hidden * w + 2 * w

    def head_flops(self) -> int:
        return 2 * self.hidden * self.vocab


def decoder_token_flops(context, exit_layer, d: DecoderDims, rule: str, kv_mode: str = "fill",
                        depth: int | None = None) -> np.ndarray:
    """Exact FLOPs of generated tokens (arrays of context sizes and 1-based exit layers) in a model
    of `depth` layers (default all: a truncation has no deeper layers to fill)."""
    if rule not in EXIT_RULE_KINDS:
        raise ValueError(f"exit rule {rule!r} is not one of {EXIT_RULE_KINDS}")
    L = depth or d.num_layers
    context, e = np.asarray(context, dtype=np.float64), np.asarray(exit_layer, dtype=np.float64)
    if np.any(e < 1) or np.any(e > L):
        raise ValueError(f"exit layers must lie in 1..{L}")
    cost = e * d.layer_flops(context)
    if kv_mode == "fill":
        cost = cost + (L - e) * d.kv_flops()
    asked = np.minimum(e, L - 1) if rule != "none" else 0 * e
    if rule == "policy":
        cost = cost + asked * d.policy_flops() + d.head_flops()
    elif rule == "confidence":
        cost = cost + asked * d.head_flops() + np.where(e == L, d.head_flops(), 0)
    else:
        cost = cost + d.head_flops()
    return cost
