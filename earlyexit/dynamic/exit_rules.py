"""Per-layer exit decisions of the dynamic early-exit methods (baselines-spec 2.1-2.3).

A rule is one object per inference pass over a batch (`MultiExitClassifier.early_exit` calls
`start` once, then `decide` after every layer but the last, whose classifier always answers).
It sees a `LayerView` of the rows still running at that layer and returns a boolean tensor: True
for the rows that leave now. Rules may hold state per instance (PABEE's patience counter) in the
order of the rows still running: after rows leave, `drop(keep)` gives the positions (into the
previous layer's rows) of those that stay, so the state is cut by index once, not gathered and
scattered by batch position at every layer. `view.rows` still gives each row's position in the
original batch; learned rules (BERxiT's exit module,
ConsistentEE's policy) read `view.hidden` and `view.attention_mask` as well. A rule never moves
data to the host: the runner does one device-to-host transfer per layer, to drop the rows that
left.

Rules here:
- `EntropyRule` (DeeBERT): natural-log entropy of the softmax, exit when H < S (strict). S = 0
  never exits. Undefined for one logit (regression): raises.
- `NormalizedEntropyRule` (FastBERT): H / ln C < speed (strict, as FastBERT's pip version, so that
  speed = 0 never exits). Undefined for regression: raises.
- `PatienceRule` (PABEE): counter of consecutive agreements between adjacent layers' predictions
  (argmax; for regression |y_i - y_{i-1}| < tau); exit when it reaches the patience t. t = 0 never
  exits; the earliest exit is layer t + 1.
- `NeverExit`: the full model through the same runner.
- `ExitAtLayer`: every row leaves at one layer (the exit-overhead benchmark's forced exit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class LayerView:
    """What a rule sees after layer `layer` (1-based) for the A rows still running."""

    layer: int
    num_layers: int
    logits: torch.Tensor                  # [A, C] this layer's exit classifier
    rows: torch.Tensor                    # [A] the rows' indices in the original batch
    hidden: torch.Tensor                  # [A, T, H] sequence states after this layer
    attention_mask: torch.Tensor          # [A, 1, 1, T] additive mask (0 real, dtype min padding)


class ExitRule:
    """Base: `start` resets per-batch state; `decide` returns a bool [A] tensor (True: exit now)."""

    def start(self, batch_size: int, num_layers: int, device: torch.device) -> None:
        self.batch_size, self.num_layers, self.device = batch_size, num_layers, device

    def decide(self, view: LayerView) -> torch.Tensor:
        raise NotImplementedError

    def drop(self, keep: torch.Tensor) -> None:
        """Rows left after the last decision: `keep` [A'] are the positions, among the rows that
        decision saw, of those still running. Stateless rules ignore it."""


class NeverExit(ExitRule):
    def decide(self, view: LayerView) -> torch.Tensor:
        return torch.zeros(len(view.rows), dtype=torch.bool, device=view.logits.device)


class ExitAtLayer(ExitRule):
    """Every row leaves at layer `layer` (1-based)."""

    def __init__(self, layer: int):
        self.layer = int(layer)

    def decide(self, view: LayerView) -> torch.Tensor:
        return torch.full((len(view.rows),), view.layer == self.layer, dtype=torch.bool, device=view.logits.device)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Natural-log entropy of softmax(logits) per row, computed stably from log-softmax."""
    return -_sum_p_log_p(logits)


def _sum_p_log_p(logits: torch.Tensor) -> torch.Tensor:
    """sum_c p_c log p_c (the negative entropy) per row. The rules compare it with the negated
    threshold: negation is exact, so the decisions are those of entropy < threshold, with one op
    less per layer (batch-1 exits pay per op)."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return (log_p.exp() * log_p).sum(-1)


def _classification_only(logits: torch.Tensor, rule: str) -> None:
    if logits.shape[-1] < 2:
        raise ValueError(f"{rule}: undefined for regression (one logit: the entropy is always 0); "
                         "this method cannot run a regression task")


class EntropyRule(ExitRule):
    """DeeBERT: exit when the softmax entropy (nats, not normalised) is below `threshold`."""

    def __init__(self, threshold: float):
        self.threshold = float(threshold)

    def decide(self, view: LayerView) -> torch.Tensor:
        _classification_only(view.logits, "entropy exit (DeeBERT)")
        return _sum_p_log_p(view.logits) > -self.threshold                   # entropy < threshold


class NormalizedEntropyRule(ExitRule):
    """FastBERT: exit when the uncertainty H / ln C is below `speed` (strict)."""

    def __init__(self, speed: float):
        self.speed = float(speed)

    def decide(self, view: LayerView) -> torch.Tensor:
        _classification_only(view.logits, "normalised-entropy exit (FastBERT)")
        # (-s) / c == s / (-c) exactly: entropy / ln C < speed
        return _sum_p_log_p(view.logits) / -math.log(view.logits.shape[-1]) < self.speed


class PatienceRule(ExitRule):
    """PABEE: exit once `patience` consecutive layers agree with the layer before them.

    Classification agreement: the same argmax. Regression (one logit): |y_i - y_{i-1}| <
    `regression_threshold` (tau); tau = 0 never agrees, so regression then never exits (spec B12).
    """

    def __init__(self, patience: int, regression_threshold: float = 0.0):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.patience, self.regression_threshold = int(patience), float(regression_threshold)

    def start(self, batch_size: int, num_layers: int, device: torch.device) -> None:
        super().start(batch_size, num_layers, device)
        self.count = self.previous = None        # per running row, in the order of view.rows

    def drop(self, keep: torch.Tensor) -> None:
        self.count, self.previous = self.count[keep], self.previous[keep]

    def decide(self, view: LayerView) -> torch.Tensor:
        logits = view.logits
        regression = logits.shape[-1] == 1
        # classification compares argmax indices as they are (no cast: one op less per layer)
        current = logits[:, 0].float() if regression else logits.argmax(-1)
        if self.previous is None:                # layer 1: nothing to agree with yet
            self.count = torch.zeros(len(current), dtype=torch.long, device=current.device)
        else:
            agree = ((current - self.previous).abs() < self.regression_threshold) if regression else current == self.previous
            self.count = torch.where(agree, self.count + 1, 0)
        self.previous = current
        if self.patience == 0:
            return torch.zeros_like(current, dtype=torch.bool)
        return self.count >= self.patience
