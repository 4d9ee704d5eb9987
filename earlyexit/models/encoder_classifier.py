"""A HF BERT-family *ForSequenceClassification model driven layer by layer, with the suite's
batch interface (input ids, token types, the batch's `ExitSchedule`), for the static methods whose
models the token-exit wrapper cannot run: head-pruned layers (HeadPrune) and layer stacks mixed
from two models (BERT-of-Theseus).

Every token runs every layer here, so the schedule only says which positions are real (its
permutation must be the identity, as `collate` makes it when every token exits at the last layer).
With the HF model's own layers this equals the HF forward (tests/test_head_gates.py).
"""

from __future__ import annotations

import torch
from torch import nn

from earlyexit.models.schedule import ExitSchedule


def attention_mask(schedule: ExitSchedule, config, dtype: torch.dtype) -> torch.Tensor:
    """The [B, 1, 1, T] key mask a BERT layer takes: boolean for sdpa (True: attend), additive for
    eager attention (which adds the mask to the scores)."""
    if not schedule.identity:
        raise ValueError("encoder classifier: every token must run every layer (identity schedule)")
    real = schedule.key_mask
    if getattr(config, "_attn_implementation", "sdpa") == "eager":
        return torch.zeros(real.shape, dtype=dtype, device=real.device).masked_fill(~real, torch.finfo(dtype).min)
    return real


class EncoderClassifier(nn.Module):
    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf = hf_model
        self.base = hf_model.base_model
        # BERT-style heads read the pooler output; RoBERTa's head reads the sequence itself.
        self.uses_pooler = getattr(self.base, "pooler", None) is not None and hasattr(hf_model, "dropout")

    @property
    def num_layers(self) -> int:
        """Layers of the batch interface (collate builds schedules for this many)."""
        return len(self.base.encoder.layer)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                schedule: ExitSchedule) -> torch.Tensor:
        h = self.base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        mask = attention_mask(schedule, self.hf.config, h.dtype)
        return self.head(self.encode(h, mask))

    def encode(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The encoder layers on the embeddings; subclasses choose other layers."""
        for layer in self.base.encoder.layer:
            h = layer(h, mask)
        return h

    def head(self, sequence_output: torch.Tensor) -> torch.Tensor:
        if self.uses_pooler:
            return self.hf.classifier(self.hf.dropout(self.base.pooler(sequence_output)))
        return self.hf.classifier(sequence_output)
