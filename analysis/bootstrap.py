"""The claims ledger's statistics: scores recomputed on resamples of test instances, linear
combinations of scores pooled over seeds, and their intervals (paired bootstrap, or a paired t-test
across seeds when there are enough of them). Seeded and deterministic.

- `Outcome`: one scored test pass (a run's selected checkpoint, or one sweep point) with each test
  instance's prediction and gold answer (earlyexit/runs/instances.py); its score on any resample of
  instances is the task's metric recomputed there (accuracy, (accuracy + F1) / 2, (Pearson +
  Spearman) / 2, mean per-instance ROUGE), equal to earlyexit.runs.metrics on the whole split.
- `Quantity`: per seed, a weighted sum of outcomes' scores (a method's score: weight 1; a point
  interpolated between two sweep points: weights w and 1 - w; a difference: +1 / -1), averaged over
  its seeds. Paired: every outcome of a comparison is scored on the SAME resample of instances.
- `estimate`: the quantity's value and a two-sided interval at `confidence`.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

CHUNK_CELLS = 4_000_000   # resampled indices held at once (rows x instances), to bound memory on large test sets


@dataclass(eq=False)
class Outcome:
    """Per-instance test outcomes of one scored pass; `metric` as in earlyexit.runs.metrics (or "rouge",
    where `predictions` are each instance's ROUGE score and `labels` is None)."""

    metric: str
    predictions: np.ndarray
    labels: np.ndarray | None = None
    name: str = ""                  # where it came from, for messages

    def __post_init__(self):
        self.predictions = np.asarray(self.predictions, dtype=np.float64)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.float64)
            if self.labels.shape != self.predictions.shape:
                raise ValueError(f"{self.name}: {len(self.predictions)} predictions but {len(self.labels)} labels")
        elif self.metric != "rouge":
            raise ValueError(f"{self.name}: metric {self.metric} needs gold labels")
        if len(self.predictions) == 0:
            raise ValueError(f"{self.name}: no test instance")

    def __len__(self) -> int:
        return len(self.predictions)

    def scores(self, index: np.ndarray) -> np.ndarray:
        """The score (percent) on each row of `index` (resamples x instances, instance positions)."""
        p = self.predictions[index]
        if self.metric == "rouge":
            return p.mean(axis=1)
        y = self.labels[index]
        if self.metric == "pearson_spearman":
            ranks = (stats.rankdata(p, axis=1), stats.rankdata(y, axis=1))
            return 100.0 * (_row_pearson(p, y) + _row_pearson(*ranks)) / 2
        accuracy = 100.0 * (p == y).mean(axis=1)
        if self.metric == "accuracy":
            return accuracy
        if self.metric != "acc_and_f1":
            raise ValueError(f"{self.name}: no resampled score for metric {self.metric!r}")
        tp = ((p == 1) & (y == 1)).sum(axis=1)
        wrong = ((p == 1) != (y == 1)).sum(axis=1)          # false positives + false negatives
        f1 = np.where(tp == 0, 0.0, 2 * tp / np.maximum(2 * tp + wrong, 1))
        return (accuracy + 100.0 * f1) / 2

    def score(self) -> float:
        """The score on the whole split."""
        return float(self.scores(np.arange(len(self))[None, :])[0])


def _row_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson per row; 0 where a row is constant (as earlyexit.runs.metrics does)."""
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, np.clip((x * y).sum(axis=1) / safe, -1.0, 1.0))


def same_instances(outcomes) -> int:
    """The common number of test instances; ValueError when the outcomes were not scored on the same
    instances (different sizes or different gold answers): they cannot be paired."""
    outcomes = list(outcomes)
    first = outcomes[0]
    for other in outcomes[1:]:
        if len(other) != len(first) or (first.labels is not None and other.labels is not None
                                         and not np.array_equal(first.labels, other.labels)):
            raise ValueError(f"{other.name}: not the test instances of {first.name}: a paired comparison needs the same")
    return len(first)


class Resampler:
    """`resamples` draws of n instance positions with replacement, the same every time it is asked
    (seeded by `seed` and `key`, so each comparison's draws are fixed and independent of the others')."""

    def __init__(self, n: int, resamples: int, seed: int, key: str = ""):
        self.n, self.resamples = int(n), int(resamples)
        self.seed = [int(seed), zlib.crc32(key.encode("utf-8"))]
        self._cache: dict[int, np.ndarray] = {}

    def scores(self, outcome: Outcome) -> np.ndarray:
        """The outcome's score on every resample (computed once per outcome)."""
        if len(outcome) != self.n:
            raise ValueError(f"{outcome.name}: {len(outcome)} test instances, the comparison has {self.n}")
        if id(outcome) not in self._cache:
            rng = np.random.default_rng(self.seed)
            rows = max(1, CHUNK_CELLS // self.n)
            parts = []
            for start in range(0, self.resamples, rows):
                index = rng.integers(0, self.n, size=(min(rows, self.resamples - start), self.n))
                parts.append(outcome.scores(index))
            self._cache[id(outcome)] = np.concatenate(parts)
        return self._cache[id(outcome)]


@dataclass
class Quantity:
    """mean over seeds of sum_k weight_k * score(outcome_k); `terms`: seed -> [(weight, Outcome)]."""

    terms: dict = field(default_factory=dict)

    @classmethod
    def of(cls, per_seed: dict) -> "Quantity":
        """From seed -> [(weight, outcome)] (e.g. one method's runs: seed -> [(1.0, outcome)])."""
        return cls({int(s): list(t) for s, t in sorted(per_seed.items())})

    @property
    def seeds(self) -> list[int]:
        return sorted(self.terms)

    def outcomes(self) -> list[Outcome]:
        return [o for terms in self.terms.values() for _, o in terms]

    def seed_values(self) -> np.ndarray:
        return np.array([sum(w * o.score() for w, o in self.terms[s]) for s in self.seeds])

    def value(self) -> float:
        return float(self.seed_values().mean())

    def samples(self, resampler: Resampler) -> np.ndarray:
        per_seed = [sum(w * resampler.scores(o) for w, o in self.terms[s]) for s in self.seeds]
        return np.mean(per_seed, axis=0)


def combine(parts: list[tuple[float, Quantity]]) -> Quantity:
    """sum_i c_i * q_i, seed by seed over the seeds every part has (paired by seed); a part without
    a common seed makes the combination empty."""
    common = set.intersection(*(set(q.terms) for _, q in parts)) if parts else set()
    return Quantity({s: [(c * w, o) for c, q in parts for w, o in q.terms[s]] for s in sorted(common)})


def difference(a: Quantity, b: Quantity) -> Quantity:
    """a - b over their common seeds."""
    return combine([(1.0, a), (-1.0, b)])


@dataclass
class Estimate:
    value: float
    low: float
    high: float
    test: str                       # the named test that gave the interval
    seeds: int

    def text(self, digits: int = 1) -> str:
        return f"{self.value:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def estimate(quantity: Quantity, *, confidence: float, resamples: int, seed: int, key: str,
             min_seeds: int = 3) -> Estimate:
    """The quantity with a two-sided `confidence` interval: a paired t-test across seeds when it has
    at least `min_seeds` seeds, else a paired percentile bootstrap over the test instances (every
    outcome scored on the same resamples; seeds pooled by averaging)."""
    if not quantity.terms:
        raise ValueError(f"{key}: nothing to estimate (no seed in common)")
    values = quantity.seed_values()
    if len(values) >= min_seeds:
        half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
        return Estimate(float(values.mean()), float(values.mean() - half), float(values.mean() + half),
                        f"paired t-test across {len(values)} seeds", len(values))
    n = same_instances(quantity.outcomes())
    samples = quantity.samples(Resampler(n, resamples, seed, key))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    pooled = f", {len(values)} seeds pooled" if len(values) > 1 else ""
    return Estimate(float(values.mean()), float(low), float(high),
                    f"paired bootstrap over {n} test instances ({resamples} resamples{pooled})", len(values))


def wilson(successes: float, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion (0..1)."""
    z = stats.norm.ppf((1 + confidence) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half
