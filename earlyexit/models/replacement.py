"""BERT-of-Theseus' replacement-rate schedules (baselines-spec 3.5, the authors' scheduler): the
probability p_t that a module runs its successor layer at optimizer step t (steps done so far)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinearReplacement:
    """p_t = min(1, base + coefficient * t): 0.3 at the start, 1 after about 1,167 steps."""

    base: float = 0.3
    coefficient: float = 0.0006

    def __call__(self, step: int) -> float:
        return min(1.0, self.base + self.coefficient * step)


@dataclass(frozen=True)
class ConstantReplacement:
    """p = rate for the first `steps` steps, then 1 (successor fine-tuning)."""

    rate: float = 0.5
    steps: int = 2500

    def __call__(self, step: int) -> float:
        return self.rate if step < self.steps else 1.0
