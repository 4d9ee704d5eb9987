"""The networks of the study (hashee-spec 2.1, 2.3, 3.2, 3.3), padding masked everywhere.

Each model maps a padded batch to logits: (B, K) at the sentence level, (B, T, K) at the token
level, where K is L (one logit per layer), L+1 (exit-layer classes) or 1 (human-defined).
"""

from __future__ import annotations

import torch
from torch import nn


def _hidden_states(base, batch) -> tuple:
    out = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
               token_type_ids=batch["token_type_ids"], output_hidden_states=True)
    return out.hidden_states  # embeddings, then one entry per encoder layer


class MultiExit(nn.Module):
    """Annotator: an internal classifier on every encoder layer of a BERT-family backbone.

    Sentence level: per layer a fresh pooler (dense + tanh on the first token) -> dropout ->
    Linear(H, classes). Token level: per layer Linear(H, tags) on every token, no dropout.
    forward -> (L, B, classes) or (L, B, T, tags).
    """

    def __init__(self, base, n_classes: int, token_level: bool, dropout: float = 0.1):
        super().__init__()
        self.base, self.token_level = base, token_level
        hidden, n_layers = base.config.hidden_size, base.config.num_hidden_layers
        self.poolers = None if token_level else nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh()) for _ in range(n_layers))
        self.dropout = nn.Dropout(0.0 if token_level else dropout)
        self.heads = nn.ModuleList(nn.Linear(hidden, n_classes) for _ in range(n_layers))

    @property
    def n_layers(self) -> int:
        return len(self.heads)

    def forward(self, batch) -> torch.Tensor:
        states = _hidden_states(self.base, batch)[1:]
        logits = []
        for layer, (state, head) in enumerate(zip(states, self.heads)):
            x = state if self.token_level else self.poolers[layer](state[:, 0])
            logits.append(head(self.dropout(x)))
        return torch.stack(logits)


class LinearM(nn.Module):
    """Linear-M: masked mean of trainable word embeddings (initialised from the backbone) -> Linear."""

    def __init__(self, embeddings: torch.Tensor, n_out: int):
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(embeddings.clone(), freeze=False)
        self.out = nn.Linear(embeddings.shape[1], n_out)

    def forward(self, batch) -> torch.Tensor:
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (self.embed(batch["input_ids"]) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.out(pooled)


class BiLSTM(nn.Module):
    """BiLSTM over the same embeddings, packed so padding is never read.

    Sentence: [forward state at the last real token; backward state at the first] -> dropout ->
    Linear(2h, K) (Glorot init, zero bias, as the authors). Token: each position's output.
    """

    def __init__(self, embeddings: torch.Tensor, n_out: int, token_level: bool, hidden: int = 256,
                 dropout: float = 0.3):
        super().__init__()
        self.token_level = token_level
        self.embed = nn.Embedding.from_pretrained(embeddings.clone(), freeze=False)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embeddings.shape[1], hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, n_out)
        nn.init.xavier_uniform_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, batch) -> torch.Tensor:
        lengths = batch["attention_mask"].sum(1).cpu()
        x = self.drop(self.embed(batch["input_ids"]))
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        output, (h_n, _) = self.lstm(packed)
        if self.token_level:
            output, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=x.shape[1])
            return self.out(self.drop(output))
        return self.out(self.drop(torch.cat([h_n[0], h_n[1]], dim=-1)))


class FineTuned(nn.Module):
    """BERT predictor: fine-tuned backbone; sentence: pooler output (last layer) -> dropout ->
    Linear(H, K); token: last-layer token states -> dropout -> Linear(H, K)."""

    def __init__(self, base, n_out: int, token_level: bool, dropout: float = 0.1):
        super().__init__()
        self.base, self.token_level = base, token_level
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(base.config.hidden_size, n_out)

    def forward(self, batch) -> torch.Tensor:
        out = self.base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        token_type_ids=batch["token_type_ids"])
        if self.token_level:
            return self.out(self.drop(out.last_hidden_state))
        pooled = out.pooler_output if getattr(out, "pooler_output", None) is not None else out.last_hidden_state[:, 0]
        return self.out(self.drop(pooled))


class LayerHeads(nn.Module):
    """Linear-B as the authors' code: the backbone is fine-tuned and head l reads the raw layer
    state (no pooler, no dropout) of layer layer_ids[l] -> one logit. (B, L) or (B, T, L)."""

    def __init__(self, base, layer_ids: list[int], token_level: bool):
        super().__init__()
        self.base, self.layer_ids, self.token_level = base, list(layer_ids), token_level
        self.heads = nn.ModuleList(nn.Linear(base.config.hidden_size, 1) for _ in layer_ids)

    def forward(self, batch) -> torch.Tensor:
        states = _hidden_states(self.base, batch)
        logits = [head(states[layer] if self.token_level else states[layer][:, 0])
                  for layer, head in zip(self.layer_ids, self.heads)]
        return torch.cat(logits, dim=-1)


class LayerProbes(nn.Module):
    """Linear-B heads on cached frozen features (M, L, H): probe l reads feature l -> one logit."""

    def __init__(self, n_layers: int, hidden: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_layers, hidden))
        self.bias = nn.Parameter(torch.zeros(n_layers))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.einsum("mlh,lh->ml", features, self.weight) + self.bias


def probe_layers(n_labels: int, n_backbone_layers: int) -> list[int]:
    """Backbone layer (1-based index into hidden_states) read by the probe of label layer l.

    Identity when the depths agree; otherwise the proportional layer ceil(l * Lb / L), e.g. a
    6-layer MiniLM probed for 12 labels reads layers 1,1,2,2,...,6,6.
    """
    return [-(-layer * n_backbone_layers // n_labels) for layer in range(1, n_labels + 1)]
