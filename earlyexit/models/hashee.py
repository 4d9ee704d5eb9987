"""HashEE: token-level early exiting that skips the work of exited tokens.

Wraps a HF BERT-family *ForSequenceClassification model and drives its own modules (embeddings,
each layer's Q/K/V, output, FFN, pooler and classifier) with the pretrained weights.

At layer l (1-based), with tokens reordered by `ExitSchedule` so active ones form a prefix:
- queries, the attention output projection, both LayerNorms and the FFN run only on the tokens
  still active (the prefix of `active_counts[l-1]` positions, packed to exactly the active ones
  when rows differ); only the attention product itself uses the [B, prefix] layout;
- keys and values come from every real token, exited ones with their frozen states (each layer
  projects them with its own W_K, W_V); padding keys are masked, so padding never changes a result;
- a token whose exit layer is l is updated by layer l and then frozen.
With every token at the last layer this is exactly the plain backbone. One layer of this is
`token_exit_layer`, written for any post-LN layer given by its parts; the seq2seq encoder
(models/hashee_seq2seq.py) runs BART's layers through it too.

CPU inference (fp32, no autograd, no autocast) runs the linear layers through oneDNN with weights
packed once (`_PackedLinears`): on the AVX-512 AMD CPU of docs/benchmarks.md, PyTorch's default
fp32 GEMM reaches a third to a half of oneDNN's rate, and on few rows (the active tokens of late
layers) its time grows with the rows while oneDNN's stays at the cost of reading the weights.
Training and every other device/dtype use the HF modules unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import GELUActivation

from earlyexit.models.schedule import ExitSchedule


class HashEEForSequenceClassification(nn.Module):
    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf = hf_model
        self.base = hf_model.base_model
        self.layers = self.base.encoder.layer
        self.num_layers = len(self.layers)
        self.num_labels = hf_model.config.num_labels
        # BERT-style heads read the pooler output; RoBERTa's head reads the sequence itself.
        self.uses_pooler = getattr(self.base, "pooler", None) is not None and hasattr(hf_model, "dropout")
        self.packed_linears = _PackedLinears()
        # set False to time / compare PyTorch's default CPU GEMM; off for narrow models, where the
        # per-call cost of the oneDNN op outweighs its faster GEMM (measured slower at hidden 64)
        self.use_onednn = hf_model.config.hidden_size >= 256

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                schedule: ExitSchedule, output_hidden_states: bool = False):
        """Logits [B, C]; with output_hidden_states also the per-layer states in original order."""
        embeddings = self.base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)  # [B, T, H]
        dense = self._packed_dense if self._can_pack(embeddings) else _module_dense
        h = embeddings if schedule.identity else _gather_rows(embeddings, schedule.permutation)
        states = [h] if output_hidden_states else None
        for index, layer in enumerate(self.layers):
            h = self._layer(layer, h, index + 1, schedule, dense)
            if states is not None:
                states.append(h)
        logits = self._head(h)
        if states is None:
            return logits
        if not schedule.identity:
            inverse = torch.argsort(schedule.permutation, dim=1)
            states = [_gather_rows(s, inverse) for s in states]
        return logits, states

    def _layer(self, layer: nn.Module, h: torch.Tensor, layer_number: int, schedule: ExitSchedule,
               dense) -> torch.Tensor:
        attention = layer.attention.self

        def finish(context: torch.Tensor, active_in: torch.Tensor) -> torch.Tensor:
            if dense is _module_dense:   # the HF modules as they are (training, GPU, other dtypes)
                attended = layer.attention.output(context, active_in)                  # dense, dropout, LN
                return layer.output(layer.intermediate(attended), attended)            # FFN, LN
            # the same steps with the packed CPU linears
            attended = _residual_norm(layer.attention.output, context, active_in, dense)
            inner = dense(layer.intermediate.dense, attended, layer.intermediate.intermediate_act_fn)
            return _residual_norm(layer.output, inner, attended, dense)

        return token_exit_layer(
            h, layer_number, schedule, heads=attention.num_attention_heads,
            query=lambda x: dense(attention.query, x), key=lambda x: dense(attention.key, x),
            value=lambda x: dense(attention.value, x),
            dropout_p=attention.dropout.p if self.training else 0.0, finish=finish)

    def train(self, mode: bool = True):
        # fused optimizers update weights without bumping their version counters, so the packed
        # copies are also dropped at every train()/eval() switch (the training loop makes one
        # before each step and each evaluation)
        self.packed_linears.clear()
        return super().train(mode)

    def _can_pack(self, x: torch.Tensor) -> bool:
        return (self.use_onednn and x.device.type == "cpu" and x.dtype == torch.float32
                and not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu")
                and torch.backends.mkldnn.is_available())

    def _packed_dense(self, linear: nn.Linear, x: torch.Tensor, activation: nn.Module | None = None) -> torch.Tensor:
        packed = self.packed_linears.get(linear)
        # the exact (erf) GELU of BERT-family FFNs runs inside the GEMM; any other activation after it
        erf_gelu = isinstance(activation, GELUActivation) and activation.act is F.gelu
        out = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]), packed, linear.bias,
                                                 "gelu" if erf_gelu else "none", [], "none" if erf_gelu else "")
        out = out.view(*x.shape[:-1], out.shape[-1])
        return out if activation is None or erf_gelu else activation(out)

    def _head(self, sequence_output: torch.Tensor) -> torch.Tensor:
        if self.uses_pooler:
            return self.hf.classifier(self.hf.dropout(self.base.pooler(sequence_output)))
        return self.hf.classifier(sequence_output)


def token_exit_layer(h: torch.Tensor, layer_number: int, schedule: ExitSchedule, *, heads: int, query, key,
                     value, dropout_p: float, finish) -> torch.Tensor:
    """One encoder layer of token-level exiting, for any post-LN transformer layer given by its parts.

    `h` [B, T, H] holds the tokens in schedule order (active ones a prefix). Only the active tokens
    make queries (`query`: [*, H] -> [*, H]); keys and values (`key`, `value`) come from every token,
    exited ones with their frozen states, padding masked; `finish(context, residual)` applies the
    rest of the layer (output projection, residual, LayerNorms, FFN) to the active tokens only and
    returns their new states. Exited and padding positions keep their states.
    """
    width = schedule.active_counts[layer_number - 1]
    batch, seq_len, hidden = h.shape
    if width == 0:
        return h
    head_dim = hidden // heads
    queries_in = h[:, :width]                                                          # [B, A, H]
    index = schedule.active_index[layer_number - 1]
    if index is None:   # every row has exactly `width` active tokens
        active_in = queries_in
        q = query(queries_in)
    else:               # pack the active tokens: token-wise work only where it is needed
        flat_in = queries_in.reshape(batch * width, hidden)
        active_in = flat_in.index_select(0, index)                                     # [N, H]
        q_active = query(active_in)
        # buffer in the projection's dtype: under CUDA autocast that is bf16 while h is fp32,
        # and index_copy refuses mixed dtypes there (CPU autocast would promote them)
        q = q_active.new_zeros(batch * width, q_active.shape[-1]).index_copy(0, index, q_active)
    q = q.view(batch, width, heads, head_dim).transpose(1, 2)
    k = key(h).view(batch, seq_len, heads, head_dim).transpose(1, 2)                   # [B, h, T, d]
    v = value(h).view(batch, seq_len, heads, head_dim).transpose(1, 2)
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=schedule.key_mask, dropout_p=dropout_p)  # [B, h, A, d]
    context = context.transpose(1, 2).reshape(batch, width, hidden)
    if index is not None:
        context = context.reshape(batch * width, hidden).index_select(0, index)
    updated = finish(context, active_in)
    if index is not None:  # exited and padding positions keep their states
        # frozen states keep their dtype; .to is a no-op (no copy) when the dtypes already agree
        updated = flat_in.index_copy(0, index, updated.to(flat_in.dtype)).view(batch, width, hidden)
    if width == seq_len:
        return updated
    return torch.cat([updated, h[:, width:]], dim=1)


def _residual_norm(block: nn.Module, x: torch.Tensor, residual: torch.Tensor, dense) -> torch.Tensor:
    """HF's *SelfOutput / *Output: LayerNorm(dropout(dense(x)) + residual)."""
    return block.LayerNorm(block.dropout(dense(block.dense, x)) + residual)


def _module_dense(linear: nn.Module, x: torch.Tensor, activation: nn.Module | None = None) -> torch.Tensor:
    return linear(x) if activation is None else activation(linear(x))


class _PackedLinears:
    """oneDNN-packed copies of fp32 weights, repacked when a weight is replaced or updated in place
    by an ordinary op (its storage or version counter changes) and dropped by `clear`."""

    def __init__(self):
        self._cache: dict[int, tuple[tuple, torch.Tensor]] = {}

    def clear(self) -> None:
        self._cache.clear()

    def get(self, linear: nn.Linear) -> torch.Tensor:
        w = linear.weight
        key = (w.data_ptr(), w._version, tuple(w.shape))
        hit = self._cache.get(id(linear))
        if hit is None or hit[0] != key:
            hit = (key, torch.ops.mkldnn._reorder_linear_weight(w.detach(), None))
            self._cache[id(linear)] = hit
        return hit[1]


def _gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[b, index[b, t]] for every b, t; x is [B, T, H]."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
