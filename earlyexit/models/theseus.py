"""BERT-of-Theseus (Xu et al., EMNLP 2020; baselines-spec 3.5): a predecessor's layers replaced,
module by module, by a successor with half the layers.

Predecessor module i is layers {r*i, ..., r*i + r - 1} (0-based, r = predecessor depth / successor
depth); successor layer i starts as a copy of predecessor layer i (the first layers, the code's
choice, spec A6). In training, each module draws ONE Bernoulli(p) per forward pass (per batch): on
success the successor layer runs, else the predecessor's r layers. In eval only the successor runs.
The predecessor (embeddings, layers, pooler, classifier) is frozen; only the successor trains.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from earlyexit.models.encoder_classifier import EncoderClassifier


class TheseusClassifier(EncoderClassifier):
    def __init__(self, predecessor: nn.Module, successor_layers: int):
        super().__init__(predecessor)
        depth = len(self.base.encoder.layer)
        if successor_layers < 1 or depth % successor_layers:
            raise ValueError(f"BERT-of-Theseus: {depth} predecessor layers do not split into "
                             f"{successor_layers} modules")
        self.ratio = depth // successor_layers
        predecessor.requires_grad_(False)
        self.successor = nn.ModuleList(copy.deepcopy(self.base.encoder.layer[i]) for i in range(successor_layers))
        self.successor.requires_grad_(True)
        self.replace_prob = 0.0

    def encode(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        predecessor = self.base.encoder.layer
        replaced = (torch.rand(len(self.successor)) < self.replace_prob).tolist() if self.training else None
        for i, layer in enumerate(self.successor):
            if replaced is None or replaced[i]:
                h = layer(h, mask)
            else:
                for j in range(i * self.ratio, (i + 1) * self.ratio):
                    h = predecessor[j](h, mask)
        if replaced is not None and not any(replaced) and torch.is_grad_enabled():
            # No successor layer ran: tie the output to them with weight 0, so the step gives them zero
            # gradients (the authors' predecessor stays differentiable, only outside the optimizer)
            # rather than none, which the loop's backward would refuse.
            h = h + 0.0 * sum(p.sum() for p in self.successor.parameters())
        return h

    def successor_model(self) -> nn.Module:
        """The successor as a HF model of its own: the predecessor's embeddings, pooler and
        classifier with the successor's layers (the model the eval forward runs)."""
        model = copy.deepcopy(self.hf)
        model.base_model.encoder.layer = copy.deepcopy(self.successor)
        model.config.num_hidden_layers = len(self.successor)
        return model.requires_grad_(True)
