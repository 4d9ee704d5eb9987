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

The layer's parts are the HF modules themselves, so CPU inference runs the backbone's fast linear
path (earlyexit/models/fast_linear.py) as every other model of the suite does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                schedule: ExitSchedule, output_hidden_states: bool = False):
        """Logits [B, C]; with output_hidden_states also the per-layer states in original order."""
        embeddings = self.base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)  # [B, T, H]
        h = embeddings if schedule.identity else _gather_rows(embeddings, schedule.permutation)
        states = [h] if output_hidden_states else None
        # inference updates the active tokens' states in place (h is this forward's own tensor):
        # no copy of the frozen ones per layer; autograd and the kept per-layer states need copies
        inplace = not torch.is_grad_enabled() and states is None
        for index, layer in enumerate(self.layers):
            h = self._layer(layer, h, index + 1, schedule, inplace)
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
               inplace: bool) -> torch.Tensor:
        attention = layer.attention.self

        def finish(context: torch.Tensor, active_in: torch.Tensor) -> torch.Tensor:
            attended = layer.attention.output(context, active_in)                  # dense, dropout, LN
            return layer.output(layer.intermediate(attended), attended)            # FFN, LN

        return token_exit_layer(
            h, layer_number, schedule, heads=attention.num_attention_heads,
            query=attention.query, key=attention.key, value=attention.value,
            dropout_p=attention.dropout.p if self.training else 0.0, finish=finish, inplace=inplace)

    def _head(self, sequence_output: torch.Tensor) -> torch.Tensor:
        if self.uses_pooler:
            return self.hf.classifier(self.hf.dropout(self.base.pooler(sequence_output)))
        return self.hf.classifier(sequence_output)


def token_exit_layer(h: torch.Tensor, layer_number: int, schedule: ExitSchedule, *, heads: int, query, key,
                     value, dropout_p: float, finish, inplace: bool = False) -> torch.Tensor:
    """One encoder layer of token-level exiting, for any post-LN transformer layer given by its parts.

    `h` [B, T, H] holds the tokens in schedule order (active ones a prefix). Only the active tokens
    make queries (`query`: [*, H] -> [*, H]); keys and values (`key`, `value`) come from every token,
    exited ones with their frozen states, padding masked; `finish(context, residual)` applies the
    rest of the layer (output projection, residual, LayerNorms, FFN) to the active tokens only and
    returns their new states. Exited and padding positions keep their states. With `inplace` (no
    autograd; `h` contiguous and owned by the caller) the new states are written into `h`, which is
    returned; otherwise `h` is left as it was.
    """
    width = schedule.active_counts[layer_number - 1]
    batch, seq_len, hidden = h.shape
    if width == 0:
        return h
    head_dim = hidden // heads
    queries_in = h[:, :width]                                                          # [B, A, H]
    index = schedule.active_index[layer_number - 1]
    tokens = schedule.token_index[layer_number - 1]
    if index is None:   # every row has exactly `width` active tokens
        active_in = queries_in
        q = query(queries_in)
    else:               # pack the active tokens: token-wise work only where it is needed
        if inplace:     # straight from the batch: no copy of the prefix
            active_in = h.view(batch * seq_len, hidden).index_select(0, tokens)         # [N, H]
        else:
            flat_in = queries_in.reshape(batch * width, hidden)
            active_in = flat_in.index_select(0, index)                                 # [N, H]
        q_active = query(active_in)
        # buffer in the projection's dtype: under CUDA autocast that is bf16 while h is fp32,
        # and index_copy refuses mixed dtypes there (CPU autocast would promote them)
        # (in place into the fresh buffer: the out-of-place index_copy would first clone it)
        q = q_active.new_zeros(batch * width, q_active.shape[-1]).index_copy_(0, index, q_active)
    q = q.view(batch, width, heads, head_dim).transpose(1, 2)
    k = key(h).view(batch, seq_len, heads, head_dim).transpose(1, 2)                   # [B, h, T, d]
    v = value(h).view(batch, seq_len, heads, head_dim).transpose(1, 2)
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=schedule.key_mask, dropout_p=dropout_p)  # [B, h, A, d]
    context = context.transpose(1, 2).reshape(batch, width, hidden)
    if index is not None:
        context = context.reshape(batch * width, hidden).index_select(0, index)
    updated = finish(context, active_in)
    if index is None and width == seq_len:    # every token active in every row
        return updated
    if inplace:
        if index is None:
            h[:, :width] = updated
        else:
            h.view(batch * seq_len, hidden).index_copy_(0, tokens, updated.to(h.dtype))
        return h
    if index is not None:  # exited and padding positions keep their states
        # frozen states keep their dtype; .to is a no-op (no copy) when the dtypes already agree
        updated = flat_in.index_copy(0, index, updated.to(flat_in.dtype)).view(batch, width, hidden)
        if width == seq_len:
            return updated
    return torch.cat([updated, h[:, width:]], dim=1)


def _gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[b, index[b, t]] for every b, t; x is [B, T, H]. Whole H-vectors by flat row index: a gather
    with the index expanded over H reads one int64 per element (slower at batch 32 in both dtypes)."""
    batch, seq_len, hidden = x.shape
    flat = (index + torch.arange(batch, device=index.device)[:, None] * seq_len).reshape(-1)
    return x.reshape(batch * seq_len, hidden).index_select(0, flat).view(batch, seq_len, hidden)
