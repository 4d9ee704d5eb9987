"""HashEE on the encoder of a BART-family seq2seq model (BART; CPT renamed into BART's layout).

The encoder runs the classifier's token-level exiting (`token_exit_layer` of models/hashee.py):
at each layer only the still-active source tokens make queries and go through the FFN, keys and
values come from every real token, exited ones with their frozen states. The decoder is the HF
model's own, whole: every decoder layer cross-attends to the final encoder memory, in which each
source token's vector is its state at its own exit layer (padding masked by the source mask).
With every source token at the last layer the memory is the plain encoder's output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from earlyexit.models.hashee import _gather_rows, token_exit_layer
from earlyexit.models.schedule import ExitSchedule


class HashEEForConditionalGeneration(nn.Module):
    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf = hf_model
        self.encoder = hf_model.get_encoder()
        self.layers = self.encoder.layers
        self.num_layers = len(self.layers)

    def encode(self, input_ids: torch.Tensor, schedule: ExitSchedule) -> torch.Tensor:
        """The decoder's memory [B, T, H] in the original token order: each token's state at its exit layer."""
        encoder = self.encoder
        embeddings = encoder.embed_tokens(input_ids) + encoder.embed_positions(input_ids)
        h = F.dropout(encoder.layernorm_embedding(embeddings), p=encoder.dropout, training=self.training)
        if not schedule.identity:
            h = _gather_rows(h, schedule.permutation)
        for index, layer in enumerate(self.layers):
            h = self._layer(layer, h, index + 1, schedule)
        if not schedule.identity:
            h = _gather_rows(h, torch.argsort(schedule.permutation, dim=1))
        return h

    def _layer(self, layer: nn.Module, h: torch.Tensor, layer_number: int, schedule: ExitSchedule) -> torch.Tensor:
        attention = layer.self_attn

        def finish(context: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
            # BartEncoderLayer after its self-attention (post-LN): output projection, residual, LN, FFN, LN
            attended = F.dropout(attention.out_proj(context), p=layer.dropout, training=self.training)
            attended = layer.self_attn_layer_norm(residual + attended)
            inner = F.dropout(layer.activation_fn(layer.fc1(attended)), p=layer.activation_dropout,
                              training=self.training)
            inner = F.dropout(layer.fc2(inner), p=layer.dropout, training=self.training)
            return layer.final_layer_norm(attended + inner)

        return token_exit_layer(h, layer_number, schedule, heads=attention.num_heads, query=attention.q_proj,
                                key=attention.k_proj, value=attention.v_proj,
                                dropout_p=attention.dropout if self.training else 0.0, finish=finish)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, schedule: ExitSchedule,
                labels: torch.Tensor) -> torch.Tensor:
        """Teacher-forced token cross-entropy of `labels` (padding = -100), the decoder fed the
        right-shifted labels."""
        from transformers.modeling_outputs import BaseModelOutput

        memory = self.encode(input_ids, schedule)
        return self.hf(encoder_outputs=BaseModelOutput(last_hidden_state=memory), attention_mask=attention_mask,
                       labels=labels).loss

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, schedule: ExitSchedule,
                 **generation) -> torch.Tensor:
        """The HF model's own search (greedy or beam) over the exiting encoder's memory."""
        from transformers.modeling_outputs import BaseModelOutput

        memory = self.encode(input_ids, schedule)
        return self.hf.generate(encoder_outputs=BaseModelOutput(last_hidden_state=memory),
                                attention_mask=attention_mask, **generation)
