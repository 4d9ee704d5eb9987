"""Task metrics, in percent, as the authors' metrics.py and ELUE define them.

- accuracy (SST-2, IMDb, SNLI, SciTail)
- acc_and_f1 (MRPC): score = (accuracy + binary F1 of class 1) / 2
- pearson_spearman (STS-B): score = (Pearson + Spearman) / 2
Every result has a "score" key, the single number a task is ranked by. Values are not rounded
(the authors round STS-B to 3 decimals of a fraction; rounding is left to the reports).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

METRIC_NAMES = ("accuracy", "acc_and_f1", "pearson_spearman")


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    # A constant prediction (e.g. a collapsed regressor early in training) has no correlation with
    # anything; scipy returns NaN there, which would poison dev-set model selection (NaN > best is
    # always False) and the averages over seeds. 0.0 ranks it as uninformative instead.
    if denominator == 0.0:
        return 0.0
    return float(np.clip((x * y).sum() / denominator, -1.0, 1.0))


def _binary_f1(predictions: np.ndarray, labels: np.ndarray) -> float:
    tp = int(((predictions == 1) & (labels == 1)).sum())
    fp = int(((predictions == 1) & (labels != 1)).sum())
    fn = int(((predictions != 1) & (labels == 1)).sum())
    # No positive predicted and none gold: F1 is undefined; 0.0 as sklearn's zero_division default.
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def compute_metrics(metric: str, predictions, labels) -> dict[str, float]:
    """Metric values in percent; `predictions` are class indices (floats for regression)."""
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRIC_NAMES)})")
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or predictions.ndim != 1:
        raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} must be equal-length vectors")
    if len(labels) == 0:
        raise ValueError("no predictions to score")

    if metric == "pearson_spearman":
        predictions, labels = predictions.astype(np.float64), labels.astype(np.float64)
        pearson = 100.0 * _pearson(predictions, labels)
        spearman = 100.0 * _pearson(rankdata(predictions), rankdata(labels))  # Pearson of average ranks
        return {"pearson": pearson, "spearman": spearman, "score": (pearson + spearman) / 2}

    accuracy = 100.0 * float((predictions == labels).mean())
    if metric == "accuracy":
        return {"accuracy": accuracy, "score": accuracy}
    f1 = 100.0 * _binary_f1(predictions, labels)
    return {"accuracy": accuracy, "f1": f1, "score": (accuracy + f1) / 2}
