"""A multi-exit classifier over any BERT-family encoder, with batched real early exit.

`MultiExitClassifier` wraps a HF *ForSequenceClassification model (earlyexit.models.backbones.
load_classifier) and drives its embeddings and encoder layers itself, one layer at a time, with an
additive 4-D padding mask (0 on real tokens, the dtype's minimum on padding), so padding never
changes a result. After every layer l = 1..L an exit classifier `exits[l-1]` maps the sequence
states to logits [B, C] (C = 1 for regression). Exit classifiers are modules with the signature
`head(hidden [B, T, H], attention_mask [B, 1, 1, T]) -> logits [B, C]`; `EXIT_HEADS` builds them by
shape, and each method names the shape it uses (baselines-spec 2.1-2.3):

- OWN_POOLER ("own-pooler"): per layer its own pooler (dense + tanh on [CLS], initialised as a copy
              of the pretrained pooler), dropout, Linear(H, C); the last exit is the model's own
              head (`FinalHead`: pooler, dropout, classifier). DeeBERT, BERxiT.
- SHARED_POOLER ("shared-pooler"): per layer a Linear(H, C) on the backbone's single shared pooler
              (dropout 0.1 in training); the last one is the final classifier. PABEE, ConsistentEE.
- ATTENTION ("attention"): per layer Linear(H, 128) + tanh, 2-head self-attention of width 128
              over the sequence (padding masked), the vector at position 0, Linear(128, 128) + tanh,
              Linear(128, C); no BERT pooler. FastBERT.

Two forwards:
- `forward` (training): every layer on every row, every exit's logits (and optionally states).
- `early_exit` (inference): rows leave the batch at their exit layer. An `alive` row set is kept;
  layer l runs only on the rows still alive (index-selected, and the batch is cut to the longest
  remaining row); after layer l < L the rule (earlyexit.dynamic.exit_rules) decides, per row, whether it
  leaves with this exit's logits; the last exit always answers. The only device-to-host transfer
  per layer is the rule's (its per-row score, compared on the host). Results equal one-by-one
  inference (tests/test_dynamic_model.py).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from earlyexit.dynamic.exit_rules import ExitRule, LayerView
from earlyexit.models.fast_linear import PACKED, PackedCache, as_fast, derived, fast_linears, packed_weight
from earlyexit.models.inference_session import InferenceSession


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, T] 1/0 (or bool) -> [B, 1, 1, T] additive: 0 where real, the dtype's minimum on padding."""
    keep = attention_mask.bool()[:, None, None, :]
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, torch.finfo(dtype).min)


# --- exit heads ---------------------------------------------------------------------------------

def _pretrained_pooler(hf_model: nn.Module) -> nn.Module:
    """The backbone's pooler (dense + tanh on the first token); RoBERTa has none, and its head's
    dense + tanh on <s> plays that part, so a pooler is made from it."""
    pooler = getattr(hf_model.base_model, "pooler", None)
    if pooler is not None:
        return pooler
    head = hf_model.classifier
    made = nn.Sequential(nn.Linear(head.dense.in_features, head.dense.out_features), nn.Tanh())
    made[0].load_state_dict(head.dense.state_dict())
    return _FirstToken(made)


class _FirstToken(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.inner(hidden[:, 0])


class PooledHead(nn.Module):
    """pooler(hidden) -> dropout -> Linear(H, C). The pooler is the head's own or a shared one.

    Without autograd it keeps its last input and pooled vector (`pooled_of`): a learned exit rule
    that reads the same pooled vector (BERxiT's exit module, ConsistentEE's policies) reuses it
    instead of pooling the layer's states a second time."""

    def __init__(self, pooler: nn.Module, hidden: int, num_labels: int, dropout: float):
        super().__init__()
        self.pooler = pooler
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_labels)
        self._last = None

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled() and (lean := self.lean()) is not None:
            return lean(hidden, attention_mask)
        pooled = self.pooler(hidden)
        # kept only without autograd: a kept graph would outlive its step
        self._last = None if torch.is_grad_enabled() else (hidden, pooled)
        return self.classifier(self.dropout(pooled))

    def lean(self, rows: int | None = None) -> Callable | None:
        """The head in eval mode as a plain function (hidden, mask) -> logits over its tensors, for
        inference without autograd; None in training or when its pooler is not tanh(Linear(first
        token)). `rows`: how many rows every call will have, when the caller knows (unused: one
        function serves any number). After every layer a batch-1 exit pays each module call,
        attribute lookup and op as if the caches were cold (the layer's weights have just streamed
        through them), so the function calls the ops alone, and one row in fp32 on the CPU is one
        compiled loop (`one_row_kernels.pooled_row`; issue 18)."""
        dense = None if self.training else _first_token_tanh(self.pooler)
        if dense is None:
            return None
        w1, b1, w2, b2 = dense.weight, dense.bias, self.classifier.weight, self.classifier.bias
        state = self.__dict__                  # `_last` without nn.Module's __setattr__
        compiled = []                          # the one-row loop, made at the first one-row call:
        # `forward` builds this function at every call, almost always for a batch

        def head(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            if hidden.shape[0] == 1:
                # one row: one compiled loop in fp32 on the CPU, else matrix-vector products (each
                # weight read once, no GEMM packing); the pooled vector stays [H] (`pooled_of`)
                if not compiled:
                    compiled.append(_compiled_pooled_row(w1, b1, w2, b2))
                row = compiled[0]
                if row is not None and hidden.dtype == torch.float32 and not hidden.requires_grad:
                    logits, pooled = row(hidden)
                else:
                    pooled = torch.tanh(torch.addmv(b1, w1, hidden[0, 0]))
                    logits = torch.addmv(b2, w2, pooled)[None]
                state["_last"] = (hidden, pooled)
                return logits
            pooled = torch.tanh(F.linear(hidden[:, 0], w1, b1))
            state["_last"] = (hidden, pooled)
            return F.linear(pooled, w2, b2)
        return head

    def pooled_of(self, hidden: torch.Tensor) -> torch.Tensor:
        """pooler(hidden) [R, H], reused from the last forward when it read these very states; [H]
        when that forward took the one-row path (the exit rules' one-row products read it as is)."""
        last = self._last
        if last is None or last[0] is not hidden:
            return self.pooler(hidden)
        return last[1]


def _compiled_pooled_row(*weights: torch.Tensor) -> Callable | None:
    """hidden [1, T, H] -> (logits [1, C], pooled [H]): `one_row_kernels.pooled_row` over the
    pooled head's weights (w1, b1, w2, b2), when they are fp32 on the CPU; else None."""
    if any(w.dtype != torch.float32 or w.device.type != "cpu" for w in weights):
        return None
    from earlyexit.models.one_row_kernels import pooled_row

    arrays = [w.detach().numpy() for w in weights]

    def row(hidden: torch.Tensor) -> tuple:
        logits, pooled = pooled_row(hidden[0, 0].numpy(), *arrays)
        return torch.from_numpy(logits), torch.from_numpy(pooled)
    return row


def _first_token_tanh(pooler: nn.Module) -> nn.Linear | None:
    """The Linear of a pooler that is tanh(Linear(first token)) and in eval mode (BERT's pooler, or
    the one made from RoBERTa's head), else None."""
    if pooler.training:
        return None
    if isinstance(pooler, _FirstToken):
        inner = pooler.inner
        if isinstance(inner, nn.Sequential) and len(inner) == 2 and type(inner[1]) is nn.Tanh and type(inner[0]) is nn.Linear:
            return inner[0]
        return None
    dense, activation = getattr(pooler, "dense", None), getattr(pooler, "activation", None)
    if type(pooler).__name__ == "BertPooler" and type(dense) is nn.Linear and type(activation) is nn.Tanh:
        return dense
    return None


class FinalHead(nn.Module):
    """The HF model's own head on the last layer (BERT: pooler, dropout, classifier; RoBERTa: its
    classification head on <s>). It holds the HF model without registering it (its parameters
    belong to `MultiExitClassifier.hf`)."""

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self._hf = (hf_model,)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hf = self._hf[0]
        pooler = getattr(hf.base_model, "pooler", None)
        if pooler is not None and hasattr(hf, "dropout"):
            return hf.classifier(hf.dropout(pooler(hidden)))
        return hf.classifier(hidden)


class AttentionHead(PackedCache, nn.Module):
    """FastBERT's classifier: Linear(H, w) + tanh, self-attention (heads, width w, padding masked),
    position 0, Linear(w, w) + tanh, Linear(w, C).

    Its two products over every position (Linear(H, w) and the attention's in-projection) take the
    backbone's packed oneDNN path in CPU inference (earlyexit/models/fast_linear.py), the tanh inside
    the first GEMM: `reduce` is a FastLinear (switched with the backbone's), the in-projection is
    packed alongside it. Right after a layer the default GEMM costs about 100 µs a call at batch 1
    against about 60 for the packed one (issue 18). On one row that path skips the in-projection
    over every position: the linear maps around the attention fold into two cached matrices
    (`fold_one_query`, `_one_row_head`)."""

    def __init__(self, hidden: int, num_labels: int, width: int = 128, heads: int = 2, dropout: float = 0.1,
                 fast: bool = True):
        super().__init__()
        self.width, self.heads = width, heads
        self.reduce = as_fast(nn.Linear(hidden, width))
        self.reduce.fast = fast
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.dense = nn.Linear(width, width)
        self.out = nn.Linear(width, num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        tensors = self._tensors()
        return _attention_logits(tensors, self.heads, hidden, attention_mask,
                                 self.attention.dropout if self.training else 0.0, self._packed_products(tensors))

    def lean(self, rows: int | None = None) -> Callable | None:
        """The head in eval mode as a plain function (hidden, mask) -> logits over its tensors (see
        `PooledHead.lean`); None in training (dropout). `rows` = 1 (every call has one row, a batch-1
        exit): the one-row function itself where the products run packed, as every level of call
        costs after a layer."""
        if self.training:
            return None
        tensors = self._tensors()
        packed = self._packed_products(tensors)
        if rows == 1 and packed is not None:
            return _one_row_head(packed, self.heads)
        return functools.partial(_attention_logits, tensors, self.heads, dropout=0.0, packed=packed)

    def _tensors(self) -> tuple:
        # read from the modules' own tables: nn.Module's attribute fallback for each of these 14
        # lookups cost more than the rest of `lean` (a batch-1 exit builds it for every instance)
        modules = self._modules
        reduce, dense, out = (modules[name]._parameters for name in ("reduce", "dense", "out"))
        attention = modules["attention"]
        inside, out_proj = attention._parameters, attention._modules["out_proj"]._parameters
        return (reduce["weight"], reduce["bias"], inside["in_proj_weight"], inside["in_proj_bias"],
                out_proj["weight"], out_proj["bias"], dense["weight"], dense["bias"], out["weight"], out["bias"])

    def _packed_products(self, tensors: tuple | None = None) -> tuple | None:
        """(dtype, packed reduce weight, its bias, packed in-projection, its bias, the folded
        one-row matrices) when the products run packed now (`FastLinear.packed_dtype`), else None.
        `tensors`: `_tensors()`, when the caller has read them."""
        reduce = self._modules["reduce"]
        dtype = None if self.training else reduce.packed_dtype()
        if dtype is None:
            return None
        tensors = self._tensors() if tensors is None else tensors
        return (dtype, *reduce._packed(dtype), *packed_weight(self, PACKED + "_in_proj", *tensors[2:4], dtype),
                self._folded(dtype, tensors[2:]))

    def _folded(self, dtype: torch.dtype, tensors: tuple) -> tuple:
        """`_one_row_head`'s matrices in `dtype`: `fold_one_query`'s four, folded in float64 from
        the current weights, then the output layer's weight and bias, then (fp32) the numpy views
        of those six, else None. `tensors`: `_tensors()` from
        the in-projection on. Cached like the packed weights (`derived`), folded again when a weight
        was replaced or updated in place."""
        return derived(self, PACKED + "_folded", tensors, dtype, _fold, tensors, self.heads, dtype)


def _fold(tensors: tuple, heads: int, dtype: torch.dtype) -> tuple:
    """`AttentionHead._folded`'s value: `fold_one_query` of the weights (in float64), then the output
    layer's, all in `dtype`; in fp32 their numpy views follow (the compiled one-row loop's inputs,
    made once here rather than at every call)."""
    folded = fold_one_query(*(t.detach().double() for t in tensors[:6]), heads)
    matrices = tuple(m.detach().to(dtype) for m in (*folded, *tensors[6:]))
    return matrices + ((tuple(m.numpy() for m in matrices),) if dtype == torch.float32 else (None,))


def _attention_logits(tensors: tuple, heads: int, hidden: torch.Tensor, attention_mask: torch.Tensor,
                      dropout: float, packed: tuple | None = None) -> torch.Tensor:
    """`AttentionHead`'s ops: nn.MultiheadAttention's own forward written out with F.linear for every
    Linear (on one row the module calls and Python checks cost more than the ops, and a batch-1 exit
    pays every call at every layer). Only position 0 is read: the only query. `packed`: the two
    products over every position on the packed path (`AttentionHead._packed_products`)."""
    reduce_w, reduce_b, in_w, in_b, attn_out_w, attn_out_b, dense_w, dense_b, out_w, out_b = tensors
    batch, width = hidden.shape[0], reduce_w.shape[0]
    if packed is None:
        qkv = F.linear(torch.tanh(F.linear(hidden, reduce_w, reduce_b)), in_w, in_b)     # [B, T, 3w]
    else:
        dtype, reduce_packed, reduce_bias, in_packed, in_bias, _ = packed
        if batch == 1:
            return _one_row_head(packed, heads)(hidden, attention_mask)
        rows = hidden.reshape(-1, hidden.shape[-1])
        rows = rows if rows.dtype == dtype else rows.to(dtype)
        x = torch.ops.mkldnn._linear_pointwise(rows, reduce_packed, reduce_bias, "tanh", [], "")
        qkv = torch.ops.mkldnn._linear_pointwise(x, in_packed, in_bias, "none", [], "")   # [B T, 3w]
    # q, k and v of every position in one product (the in-projection's own weight), split by views
    q, k, v = qkv.view(batch, -1, 3, heads, width // heads).permute(2, 0, 3, 1, 4).unbind()  # [B, h, T, d]
    mask = attention_mask if attention_mask.dtype == q.dtype else attention_mask.to(q.dtype)
    context = F.scaled_dot_product_attention(q[:, :, :1], k, v, attn_mask=mask, dropout_p=dropout)  # [B, h, 1, d]
    if batch == 1 and context.dtype == attn_out_w.dtype:
        # one row: matrix-vector products (no GEMM packing), as `PooledHead` on one row (under bf16
        # autocast the context is bf16 and the weights fp32: F.linear's autocast path below)
        attended = torch.addmv(attn_out_b, attn_out_w, context.reshape(width))   # the heads side by side
        return torch.addmv(out_b, out_w, torch.tanh(torch.addmv(dense_b, dense_w, attended)))[None]
    # [B, h, 1, d] -> [B, h * d], the heads side by side (one query: no transpose needed)
    attended = F.linear(context.reshape(batch, width), attn_out_w, attn_out_b)
    return F.linear(torch.tanh(F.linear(attended, dense_w, dense_b)), out_w, out_b)


def fold_one_query(in_w: torch.Tensor, in_b: torch.Tensor, attn_out_w: torch.Tensor, attn_out_b: torch.Tensor,
                   dense_w: torch.Tensor, dense_b: torch.Tensor, heads: int) -> tuple:
    """The FastBERT head's attention with its one query (position 0), folded into two matrices.

    With x_t the reduced states and, per attention head h of width d, q = Wq_h x_0 + bq_h and
    k_t = Wk_h x_t + bk_h: q . k_t = x_t . (Wk_h^T q) + q . bk_h, and the last term is the same at
    every position, so the softmax drops it. The scores are therefore x_t . u_h with
    u_h = (Wk_h^T Wq_h x_0 + Wk_h^T bq_h) / sqrt(d): one matrix-vector product of x_0, no keys. As the
    weights p_t sum to 1, sum_t p_t (Wv_h x_t + bv_h) = Wv_h z_h + bv_h with z_h = sum_t p_t x_t, and
    the value, output and dense products are linear in z, so they fold into one [w, h w] matrix.
    Returns (query_key [h w, w], its bias [h w], value_out_dense [w, h w], its bias [w])."""
    width = in_w.shape[1]
    size = width // heads
    w_q, w_k, w_v = (part.view(heads, size, width) for part in in_w.split(width))
    b_q, _, b_v = (part.view(heads, size) for part in in_b.split(width))
    scale = size ** -0.5
    query_key = (torch.einsum("hdi,hdj->hij", w_k, w_q) * scale).reshape(heads * width, width)
    query_key_bias = (torch.einsum("hdi,hd->hi", w_k, b_q) * scale).reshape(heads * width)
    out_blocks = attn_out_w.view(width, heads, size)                  # out_proj's columns per head
    value_out = torch.einsum("ohd,hdj->ohj", out_blocks, w_v).reshape(width, heads * width)
    value_out_bias = attn_out_b + torch.einsum("ohd,hd->o", out_blocks, b_v)
    return (query_key.contiguous(), query_key_bias, (dense_w @ value_out).contiguous(),
            dense_w @ value_out_bias + dense_b)


def _one_row_head(packed: tuple, heads: int) -> Callable:
    """`AttentionHead` on one row in CPU inference as a function (hidden [1, T, H], mask) -> logits,
    over `_packed_products`' packed reduction and folded matrices (`fold_one_query`): one packed
    product over every position (the reduction and its tanh), the attention with the reduced states
    as keys and values (scale 1: folded in), three matrix-vector products. Against the written-out
    one-row path, one product over every position fewer, which right after a layer costs tens of
    µs a head at batch 1 (issue 18). In fp32 everything after the reduction is one compiled loop
    (`one_row_kernels.attention_tail`): after a layer each torch op pays for its cold code and
    state, about 50 µs a head together (docs/benchmarks.md)."""
    dtype, reduce_packed, reduce_bias, _, _, folded = packed
    query_key, query_key_bias, value_out_dense, value_out_dense_bias, out_w, out_b, arrays = folded
    width = query_key.shape[1]
    linear = torch.ops.mkldnn._linear_pointwise
    if arrays is not None:
        # fp32: everything after the reduction in one compiled loop (`one_row_kernels`)
        from earlyexit.models.one_row_kernels import attention_tail

        def compiled_head(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            rows = hidden[0] if hidden.dtype == dtype else hidden[0].to(dtype)
            x = linear(rows, reduce_packed, reduce_bias, "tanh", [], "")                            # [T, w]
            mask = attention_mask if attention_mask.dtype == dtype else attention_mask.to(dtype)
            return torch.from_numpy(attention_tail(x.numpy(), mask.reshape(-1).numpy(), *arrays))
        return compiled_head

    def head(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        rows = hidden[0] if hidden.dtype == dtype else hidden[0].to(dtype)
        x = linear(rows, reduce_packed, reduce_bias, "tanh", [], "")                                # [T, w]
        scores_by = torch.addmv(query_key_bias, query_key, x[0]).view(1, heads, 1, width)          # u_h
        states = x.expand(1, heads, -1, width)
        mask = attention_mask if attention_mask.dtype == dtype else attention_mask.to(dtype)
        pooled = F.scaled_dot_product_attention(scores_by, states, states, attn_mask=mask, scale=1.0)  # z_h
        dense = torch.tanh(torch.addmv(value_out_dense_bias, value_out_dense, pooled.view(heads * width)))
        return torch.addmv(out_b, out_w, dense)[None]
    return head


def own_pooler_exits(hf_model: nn.Module) -> nn.ModuleList:
    config = hf_model.config
    pooler = _pretrained_pooler(hf_model)
    highways = [PooledHead(copy.deepcopy(pooler), config.hidden_size, config.num_labels, config.hidden_dropout_prob)
                for _ in range(config.num_hidden_layers - 1)]
    return nn.ModuleList([*highways, FinalHead(hf_model)])


def shared_pooler_exits(hf_model: nn.Module) -> nn.ModuleList:
    config = hf_model.config
    pooler = _pretrained_pooler(hf_model)     # one module, shared by every head
    return nn.ModuleList(PooledHead(pooler, config.hidden_size, config.num_labels, config.hidden_dropout_prob)
                         for _ in range(config.num_hidden_layers))


def attention_exits(hf_model: nn.Module, width: int = 128, heads: int = 2) -> nn.ModuleList:
    config = hf_model.config
    fast = any(linear.fast for linear in fast_linears(hf_model))    # on the packed path with the backbone's
    return nn.ModuleList(AttentionHead(config.hidden_size, config.num_labels, width, heads,
                                      config.attention_probs_dropout_prob, fast)
                         for _ in range(config.num_hidden_layers))


# Head shapes, named for what they are (a method picks one: DynamicMethod.heads).
OWN_POOLER, SHARED_POOLER, ATTENTION = "own-pooler", "shared-pooler", "attention"
# shape -> builder(hf_model) -> ModuleList of num_layers exit heads
EXIT_HEADS: dict[str, Callable[[nn.Module], nn.ModuleList]] = {
    OWN_POOLER: own_pooler_exits, SHARED_POOLER: shared_pooler_exits, ATTENTION: attention_exits,
}


def lean_head(head: nn.Module, rows: int | None = None) -> Callable:
    """The head as a plain function where it has one (`lean`: in eval mode), else the module.
    `rows`: how many rows every call will have, when the caller knows."""
    lean = getattr(head, "lean", None)
    return (lean(rows) if lean is not None else None) or head


# --- the model ----------------------------------------------------------------------------------

@dataclass
class MultiExitOutput:
    logits: list            # per layer l = 1..L: [B, C]
    hidden: list | None     # per layer: [B, T, H] (when asked)
    mask: torch.Tensor | None = None   # [B, 1, 1, T] the additive mask the layers saw


@dataclass
class ExitResult:
    logits: torch.Tensor    # [B, C] the answering exit's logits, on the model's device
    exit_layers: np.ndarray  # [B] 1-based layer whose exit answered


class MultiExitClassifier(InferenceSession, nn.Module):
    def __init__(self, hf_model: nn.Module, exits: nn.ModuleList | str):
        """`exits`: the exit heads (one per layer), or a key of EXIT_HEADS to build them."""
        super().__init__()
        self.hf = hf_model
        self.base = hf_model.base_model
        self.layers = self.base.encoder.layer
        self.num_layers = len(self.layers)
        self.num_labels = hf_model.config.num_labels
        self.exits = EXIT_HEADS[exits](hf_model) if isinstance(exits, str) else exits
        if len(self.exits) != self.num_layers:
            raise ValueError(f"{len(self.exits)} exit heads for {self.num_layers} layers")

    @property
    def regression(self) -> bool:
        return self.num_labels == 1

    def embed(self, input_ids, token_type_ids, attention_mask):
        h = self.base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        return h, additive_mask(attention_mask, h.dtype)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, attention_mask: torch.Tensor,
                output_hidden: bool = False, exits=None) -> MultiExitOutput:
        """Every exit's logits, every row through every layer (training, scoring every exit).
        `exits`: the 1-based layers whose exit runs (default all); the others' entries are None
        (a stage that trains only the last head need not run the others)."""
        wanted = set(range(1, self.num_layers + 1) if exits is None else exits)
        h, mask = self.embed(input_ids, token_type_ids, attention_mask)
        logits, states = [], [] if output_hidden else None
        for number, (layer, head) in enumerate(zip(self.layers, self.exits), start=1):
            h = layer(h, mask)
            logits.append(head(h, mask) if number in wanted else None)
            if states is not None:
                states.append(h)
        return MultiExitOutput(logits, states, mask)

    @torch.no_grad()
    def truncated(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, attention_mask: torch.Tensor,
                  depth: int) -> torch.Tensor:
        """Logits [B, C] of exit `depth` after layers 1..depth on every row: the model truncated to its
        first `depth` layers (its own full forward at depth L), what exiting is compared with."""
        h, mask = self.embed(input_ids, token_type_ids, attention_mask)
        for layer in self.layers[:depth]:
            h = layer(h, mask)
        rows = 1 if h.shape[0] == 1 else None
        return self.session_cached(("exit", depth, rows), lambda: lean_head(self.exits[depth - 1], rows))(h, mask)

    def lean_exits(self, rows: int | None = None) -> list:
        """Every exit head as `lean_head` gives it: what the early-exit runner calls, built per batch
        (once per session: earlyexit/models/inference_session.py). `rows`: how many rows every call
        will have, when the caller knows (a batch of one)."""
        return self.session_cached(("exits", rows), lambda: [lean_head(head, rows) for head in self.exits])

    @torch.no_grad()
    def early_exit(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, attention_mask: torch.Tensor,
                   rule: ExitRule, lengths: np.ndarray | None = None) -> ExitResult:
        """Real early exit: each row stops at the first layer whose rule says so (the last layer
        always answers); only rows still alive run the next layer. `lengths`: real tokens per row
        on the host, when the caller has them (else read from the mask: one transfer)."""
        h, mask = self.embed(input_ids, token_type_ids, attention_mask)
        # plain lists: no module lookups per layer (a batch of one keeps one row to its exit)
        layers, exits = list(self.layers), self.lean_exits(1 if h.shape[0] == 1 else None)

        def run_layer(number, keep, width):
            nonlocal h, mask
            if keep is not None:                                # cut padding no row still needs
                h, mask = h[keep, :width], mask[keep, ..., :width]
            h = layers[number - 1](h, mask)
            return exits[number - 1](h, mask), h, mask

        return exit_loop(run_layer, attention_mask, self.num_layers, rule, lengths)

    @torch.no_grad()
    def layer_outputs(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                      attention_mask: torch.Tensor) -> "LayerOutputs":
        """Every row through every layer, with every exit's logits and every layer's states: what
        `replay_exit` needs to score any number of rules on one pass (a sweep)."""
        out = self(input_ids, token_type_ids, attention_mask, output_hidden=True)
        return LayerOutputs(out.logits, out.hidden, out.mask, attention_mask)


@dataclass
class LayerOutputs:
    logits: list                    # per layer: [B, C]
    hidden: list                    # per layer: [B, T, H]
    mask: torch.Tensor              # [B, 1, 1, T] additive
    attention_mask: torch.Tensor    # [B, T] 1 real, 0 padding


def exit_loop(run_layer: Callable, attention_mask: torch.Tensor, num_layers: int, rule: ExitRule,
              lengths: np.ndarray | None = None) -> ExitResult:
    """The early-exit bookkeeping shared by real exit and replay. `run_layer(number, keep, width)`
    gives (logits, hidden, additive mask) of layer `number` for the rows still running, after
    cutting the previous layer's rows to positions `keep` (None: no row left) and `width` tokens.
    Per layer the only device-to-host transfer is the rule's (its decision comes back as a host
    list); the rows that stay are index-selected, and nothing is copied while no row has left.
    While nobody leaves a layer costs the rule and one `any` on that list: no numpy and no device
    op of the runner's own (a batch-1 exit pays tens of µs for each, every layer: issue 18)."""
    batch, device = attention_mask.shape[0], attention_mask.device
    rule.start(batch, num_layers, device)
    exit_layers = alive = answer = None            # made when the first row leaves early
    keep = width = None
    for number in range(1, num_layers + 1):
        logits, h, mask = run_layer(number, keep, width)
        keep = None
        if number == num_layers:
            if answer is None:                     # nobody left early: the last exit answers every row
                return ExitResult(logits, np.full(batch, num_layers, dtype=np.int64))
            answer.index_copy_(0, torch.from_numpy(alive).to(device), logits)
            break
        leave = rule.decide(LayerView(number, num_layers, logits, h, mask))    # host list of bools
        if not any(leave):
            continue
        if exit_layers is None:
            if all(leave):                         # every row leaves together: this exit answers them all
                return ExitResult(logits, np.full(batch, number, dtype=np.int64))
            exit_layers = np.full(batch, num_layers, dtype=np.int64)
            alive = np.arange(batch)               # batch positions of the rows still running
            answer = logits.new_zeros(batch, logits.shape[-1])
            # real tokens per row on the host (one transfer per batch when the caller has not got them)
            lengths = attention_mask.sum(1).cpu().numpy() if lengths is None else np.asarray(lengths)
        leave = np.array(leave, dtype=bool)
        left = alive[leave]                        # their batch positions
        exit_layers[left] = number
        gone = torch.from_numpy(np.flatnonzero(leave)).to(device)
        answer.index_copy_(0, torch.from_numpy(left).to(device), logits[gone])
        stay = np.flatnonzero(~leave)
        if len(stay) == 0:
            break
        alive = alive[stay]
        width = int(lengths[alive].max())
        keep = torch.from_numpy(stay).to(device)
        rule.drop(stay.tolist())
    return ExitResult(answer, exit_layers)


def replay_exit(recorded: LayerOutputs, rule: ExitRule) -> ExitResult:
    """The exits `early_exit` makes with `rule`, read from layer outputs computed once for every
    row: a row's states up to its exit do not depend on the other rows (attention is per row,
    padding masked), so this equals real early exit up to float rounding, at one pass per split
    whatever the number of rules."""
    rows = cut = None                # the rows still running and their width (None: all, uncut)

    def run_layer(number, keep, width):
        nonlocal rows, cut
        if keep is not None:
            rows, cut = (keep if rows is None else rows[keep]), width
        logits, h = recorded.logits[number - 1], recorded.hidden[number - 1]
        if rows is None:
            return logits, h, recorded.mask
        return logits[rows], h[rows, :cut], recorded.mask[rows, ..., :cut]

    return exit_loop(run_layer, recorded.attention_mask, len(recorded.logits), rule)


# --- padded batches of an encoded split -----------------------------------------------------------

def pad_batch(split, indices: np.ndarray, pad_id: int):
    """(input_ids, token_type_ids or None, attention_mask, labels) tensors of `indices`, padded to
    the longest of them."""
    from earlyexit.data.batching import pad_rows

    rows = pad_rows(split, indices, pad_id)
    return (torch.from_numpy(rows["ids"]), None if rows["types"] is None else torch.from_numpy(rows["types"]),
            torch.from_numpy(rows["mask"]), torch.from_numpy(rows["labels"]))


def device_batch(split, indices: np.ndarray, pad_id: int, device: torch.device):
    """`pad_batch`'s tensors on `device` (token_type_ids None when the backbone has none): the one way
    a classifier's batch of an encoded split reaches the device."""
    return tuple(None if t is None else t.to(device, non_blocking=True) for t in pad_batch(split, indices, pad_id))
