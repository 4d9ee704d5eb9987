"""Task metrics in percent: against sklearn/scipy on random data, and hand-computed values."""

import math
import warnings

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score

from earlyexit.runs.metrics import compute_metrics


@pytest.mark.parametrize("seed", range(5))
def test_classification_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=500)
    predictions = np.where(rng.random(500) < 0.6, labels, rng.integers(0, 3, size=500))
    out = compute_metrics("accuracy", predictions, labels)
    assert out["accuracy"] == pytest.approx(100 * accuracy_score(labels, predictions))
    assert out["score"] == out["accuracy"]

    labels, predictions = labels % 2, predictions % 2
    out = compute_metrics("acc_and_f1", predictions, labels)
    acc, f1 = 100 * accuracy_score(labels, predictions), 100 * f1_score(labels, predictions)
    assert out == pytest.approx({"accuracy": acc, "f1": f1, "score": (acc + f1) / 2})


@pytest.mark.parametrize("seed", range(5))
def test_regression_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    labels = np.round(rng.uniform(0, 5, size=300), 1)              # ties, like STS-B's scores
    predictions = labels + rng.normal(0, 1.0 + seed, size=300)
    out = compute_metrics("pearson_spearman", predictions, labels)
    p, s = 100 * pearsonr(predictions, labels)[0], 100 * spearmanr(predictions, labels)[0]
    assert out == pytest.approx({"pearson": p, "spearman": s, "score": (p + s) / 2})


def test_known_values():
    # 4 of 5 right; class 1: tp=2, fp=1, fn=0 -> F1 = 4/5.
    out = compute_metrics("acc_and_f1", [1, 1, 0, 0, 1], [1, 1, 0, 0, 0])
    assert out == pytest.approx({"accuracy": 80.0, "f1": 80.0, "score": 80.0})
    assert compute_metrics("accuracy", [2, 0, 1, 1], [2, 1, 1, 0]) == {"accuracy": 50.0, "score": 50.0}
    # Monotone but not linear: Spearman 100, Pearson below it.
    out = compute_metrics("pearson_spearman", [1.0, 2.0, 3.0, 10.0], [1, 2, 3, 4])
    assert out["spearman"] == pytest.approx(100.0)
    assert out["pearson"] == pytest.approx(100 * pearsonr([1, 2, 3, 10], [1, 2, 3, 4])[0])
    assert out["pearson"] < 90
    # Perfectly reversed ranking.
    assert compute_metrics("pearson_spearman", [3.0, 2.0, 1.0], [0.5, 1.0, 4.0])["spearman"] == pytest.approx(-100.0)


def test_f1_without_positives_is_zero():
    assert compute_metrics("acc_and_f1", [0, 0, 0], [0, 0, 0]) == {"accuracy": 100.0, "f1": 0.0, "score": 50.0}


def test_constant_regression_predictions_give_zero_not_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no RuntimeWarning either
        out = compute_metrics("pearson_spearman", np.full(4, 2.5), [0.0, 1.0, 2.0, 5.0])
    assert out == {"pearson": 0.0, "spearman": 0.0, "score": 0.0}
    assert not any(math.isnan(v) for v in out.values())


def test_errors():
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        compute_metrics("f1", [1], [1])
    with pytest.raises(ValueError, match="equal-length"):
        compute_metrics("accuracy", [1, 0], [1])
    with pytest.raises(ValueError, match="no predictions"):
        compute_metrics("accuracy", [], [])
