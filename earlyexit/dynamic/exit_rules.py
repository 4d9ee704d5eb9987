"""Per-layer exit decisions of the dynamic early-exit methods (baselines-spec 2.1-2.3).

A rule is one object per inference pass over a batch (`MultiExitClassifier.early_exit` calls
`start` once, then `decide` after every layer but the last, whose classifier always answers).
It sees a `LayerView` of the rows still running at that layer and returns its decision on the
host, a list of bools: True for the rows that leave now. A rule brings one tensor per layer to
the host with one `tolist()` (the one device-to-host transfer per layer) and decides there: PABEE
the argmax, without device ops for the comparison and the state; the entropy rules the logits,
whose entropy they compute on the host in float64 (`host_entropies`), in place of four device ops;
the learned rules the score before their sigmoid, which they take on the host in float64
(`host_sigmoids`). At batch 1 every op and every numpy call after a layer costs tens of µs (the
layer's weights have just pushed the interpreter's data out of the caches), while Python
arithmetic on a few numbers costs next to nothing (issue 18).

Rules may hold state per instance (PABEE's patience counter) in the order of the rows still
running: after rows leave, `drop(keep)` gives the positions (into the previous layer's rows) of
those that stay, so the state is cut once, not gathered and scattered by batch position at every
layer. Learned rules (BERxiT's exit module, ConsistentEE's policy) read `view.hidden` and
`view.attention_mask` as well.

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
Learned rules live with their models (earlyexit/models/berxit.py, consistentee.py) and take their
exit probabilities' sigmoid on the host (`host_sigmoids`); ConsistentEE's policy on one row takes
its GELU and output layer there too (`ExitPolicy.host_probabilities`).
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
    hidden: torch.Tensor                  # [A, T, H] sequence states after this layer
    attention_mask: torch.Tensor          # [A, 1, 1, T] additive mask (0 real, dtype min padding)

    @property
    def size(self) -> int:
        """A, the number of rows still running."""
        return self.logits.shape[0]


def host_scores(scores: torch.Tensor) -> list[float]:
    """Per-row scores [R] or [R, 1] (a column) on the host, with the one `tolist()`."""
    values = scores.tolist()
    return [v for (v,) in values] if scores.dim() == 2 else values


class ExitRule:
    """Base: `start` resets per-batch state; `decide` returns a list of A bools (True: exit now)."""

    def start(self, batch_size: int, num_layers: int, device: torch.device) -> None:
        self.batch_size, self.num_layers, self.device = batch_size, num_layers, device

    def decide(self, view: LayerView) -> list[bool]:
        raise NotImplementedError

    def drop(self, keep: list[int]) -> None:
        """Rows left after the last decision: `keep` are the positions, among the rows that
        decision saw, of those still running. Stateless rules ignore it."""


class NeverExit(ExitRule):
    def decide(self, view: LayerView) -> list[bool]:
        return [False] * view.size


class ExitAtLayer(ExitRule):
    """Every row leaves at layer `layer` (1-based)."""

    def __init__(self, layer: int):
        self.layer = int(layer)

    def decide(self, view: LayerView) -> list[bool]:
        return [view.layer == self.layer] * view.size


def host_sigmoids(scores: torch.Tensor) -> list[float]:
    """A learned rule's exit probability sigmoid(z) per row, from its score z [R] or [R, 1] before
    the sigmoid, computed on the host in float64 from z's one `tolist()` (BERxiT's exit module,
    ConsistentEE's policies). Why on the host: the sigmoid on the device is one more op after every
    layer, which costs a batch-1 exit tens of µs (issue 18). A decision can differ from comparing the
    device's sigmoid (the authors' code) only for a row whose probability lies within the score's
    rounding (about 6e-8 in fp32) of the threshold, and it is the same at every batch size.
    Exp never overflows (the form is chosen by the sign of z); NaN stays NaN, which no comparison
    lets exit."""
    return [host_sigmoid(z) for z in host_scores(scores)]


def host_sigmoid(z: float) -> float:
    """sigmoid(z) of one host float, in float64 (`host_sigmoids`' formula)."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)                     # z < 0, or NaN
    return e / (1.0 + e)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Natural-log entropy of softmax(logits) per row, computed stably from log-softmax (fp32)."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def host_entropies(logits: torch.Tensor) -> list[float]:
    """The entropy rules' score: natural-log entropy of softmax(logits) per row, computed on the host
    in float64 from the logits' one `tolist()`, as log1p(r) - sum_c e_c (z_c - m) / (1 + r), with m
    the row's largest logit, e_c = exp(z_c - m) and r the sum of e_c over the other classes (log1p
    keeps the relative precision of a confident row's tiny entropy, which log(1 + r) would lose).

    Why on the host: after a layer every device op costs a batch-1 exit tens of µs (issue 18), and
    the entropy on the device is four of them. The float64 value is the exact entropy to about 1e-16,
    so a decision can differ from an fp32 device computation (this suite's earlier one, or the
    authors' log A - B / A) only for a row whose entropy lies within fp32 rounding (about 1e-7) of
    the threshold; it is the same at every batch size. Never negative (1 + r >= 1 and every z_c - m <= 0),
    so a threshold of 0 never exits; NaN logits give NaN, which exits nobody.

    Cost: a few µs a row in Python (two classes: under 1 µs, `_two_class_entropies`). On the CPU
    that is nothing beside a layer at any batch size; on a GPU at batch 32 it is about what the four
    kernel launches it replaces cost."""
    rows = logits.tolist()
    if logits.shape[-1] == 2:
        return _two_class_entropies(rows)
    return [_entropy_of_row(row) for row in rows]


def _entropy_of_row(row: list[float]) -> float:
    top = max(row)
    others = row.copy()
    others.remove(top)                                  # the largest's e_c = 1 and z_c - m = 0
    weights = [math.exp(z - top) for z in others]
    rest = sum(weights)
    return math.log1p(rest) - sum(w * (z - top) for w, z in zip(weights, others)) / (1.0 + rest)


def _two_class_entropies(rows: list[list[float]]) -> list[float]:
    """`_entropy_of_row` of two-class rows, bit for bit, in fewer steps: with d = m - (the other
    logit) and e = exp(-d), the sums hold one term each, e (z - m) = -(e d) exactly, and so
    log1p(e) - (-(e d)) / (1 + e) = log1p(e) + (e d) / (1 + e)."""
    out = []
    for a, b in rows:
        d = a - b if a >= b else b - a                  # NaN: b - a, NaN as it should be
        e = math.exp(-d)
        out.append(math.log1p(e) + (e * d) / (1.0 + e))
    return out


def _classification_only(logits: torch.Tensor, rule: str) -> None:
    if logits.shape[-1] < 2:
        raise ValueError(f"{rule}: undefined for regression (one logit: the entropy is always 0); "
                         "this method cannot run a regression task")


class EntropyRule(ExitRule):
    """DeeBERT: exit when the softmax entropy (nats, not normalised) is below `threshold`."""

    def __init__(self, threshold: float):
        self.threshold = float(threshold)

    def decide(self, view: LayerView) -> list[bool]:
        _classification_only(view.logits, "entropy exit (DeeBERT)")
        threshold = self.threshold
        return [h < threshold for h in host_entropies(view.logits)]


class NormalizedEntropyRule(ExitRule):
    """FastBERT: exit when the uncertainty H / ln C is below `speed` (strict)."""

    def __init__(self, speed: float):
        self.speed = float(speed)

    def decide(self, view: LayerView) -> list[bool]:
        _classification_only(view.logits, "normalised-entropy exit (FastBERT)")
        speed, log_classes = self.speed, math.log(view.logits.shape[-1])
        return [h / log_classes < speed for h in host_entropies(view.logits)]


class PatienceRule(ExitRule):
    """PABEE: exit once `patience` consecutive layers agree with the layer before them.

    Classification agreement: the same argmax. Regression (one logit): |y_i - y_{i-1}| <
    `regression_threshold` (tau); tau = 0 never agrees, so regression then never exits (spec B12).
    The counters live on the host; classification brings the argmax there, regression compares the
    difference on the device (in fp32) and brings the agreement.
    """

    def __init__(self, patience: int, regression_threshold: float = 0.0):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.patience, self.regression_threshold = int(patience), float(regression_threshold)

    def start(self, batch_size: int, num_layers: int, device: torch.device) -> None:
        super().start(batch_size, num_layers, device)
        self.count = self.previous = None        # per running row, in the order of the rows

    def drop(self, keep: list[int]) -> None:
        self.count = [self.count[i] for i in keep]
        if isinstance(self.previous, torch.Tensor):            # regression: the last values, on the device
            self.previous = self.previous[torch.tensor(keep, device=self.previous.device)]
        else:
            self.previous = [self.previous[i] for i in keep]

    def decide(self, view: LayerView) -> list[bool]:
        logits = view.logits
        if logits.shape[-1] == 1:
            current = logits[:, 0].float()
            agree = None if self.previous is None else \
                ((current - self.previous).abs() < self.regression_threshold).tolist()
        else:
            current = logits.argmax(-1).tolist()
            agree = None if self.previous is None else [a == b for a, b in zip(current, self.previous)]
        # layer 1: nothing to agree with yet
        self.count = [0] * view.size if agree is None else [c + 1 if a else 0 for c, a in zip(self.count, agree)]
        self.previous = current
        patience = self.patience
        return [c >= patience for c in self.count] if patience else [False] * view.size
