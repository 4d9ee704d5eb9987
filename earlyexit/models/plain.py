"""A Hugging Face *ForSequenceClassification model of any layout (BERT, ALBERT, RoBERTa, DistilBERT,
...) driven with the one loop's calling convention, every token through every layer.

The static baselines (n-layer truncation, DistilBERT, TinyBERT) are plain smaller models: nothing
exits, so the HF forward runs as it is; padding is masked from the pad id.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from earlyexit.cost.flops import ModelDims


def hf_depth(config) -> int:
    """Encoder layers of an HF config (DistilBERT maps num_hidden_layers to its n_layers)."""
    return int(config.num_hidden_layers)


def plain_dims(config) -> ModelDims:
    """Model dimensions for the FLOPs counter. DistilBERT names its FFN width hidden_dim; its
    pre-classifier (H x H) costs what BERT's pooler does, RoBERTa's dense head too."""
    intermediate = getattr(config, "intermediate_size", None) or config.hidden_dim
    return ModelDims(hidden=config.hidden_size, heads=config.num_attention_heads, intermediate=intermediate,
                     num_layers=hf_depth(config), num_labels=config.num_labels,
                     pooler=getattr(config, "model_type", "bert") != "roberta")


class PlainSequenceClassifier(nn.Module):
    def __init__(self, hf_model: nn.Module, pad_id: int):
        super().__init__()
        self.hf = hf_model
        self.pad_id = pad_id
        self.num_layers = hf_depth(hf_model.config)
        # DistilBERT has no segment embeddings: its forward takes no token_type_ids.
        self.takes_token_types = "token_type_ids" in inspect.signature(hf_model.forward).parameters

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, schedule=None) -> torch.Tensor:
        """Logits [B, C]; `schedule` is accepted for the loop's convention and unused (no exits)."""
        inputs = {"input_ids": input_ids, "attention_mask": (input_ids != self.pad_id).long()}
        if self.takes_token_types and token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        return self.hf(**inputs).logits
