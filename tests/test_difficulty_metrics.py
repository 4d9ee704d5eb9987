"""The difficulty metric: micro P/R/F1 with "the layer is wrong" (label 0) as the positive class."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from difficulty.metrics import difficulty_metrics, majority_bits, micro_prf
from difficulty.targets import bits_from_exit, exit_layer


@pytest.mark.parametrize("seed", range(5))
def test_micro_prf_matches_sklearn_with_label_0_positive(seed):
    rng = np.random.default_rng(seed)
    gold = (rng.random((200, 12)) < 0.72).astype(int)          # about the released rate of 1s
    pred = (rng.random((200, 12)) < rng.uniform(0.3, 0.9)).astype(int)
    ours = micro_prf(pred, gold)
    p, r, f, _ = precision_recall_fscore_support(gold.ravel(), pred.ravel(), pos_label=0, average="binary",
                                                 zero_division=0)
    assert ours["precision"] == pytest.approx(p)
    assert ours["recall"] == pytest.approx(r)
    assert ours["f1"] == pytest.approx(f)


def test_token_level_cells_pool_instances_tokens_and_layers():
    rng = np.random.default_rng(3)
    gold = [(rng.random((n, 4)) < 0.8).astype(int) for n in (3, 7, 1)]
    pred = [(rng.random((n, 4)) < 0.5).astype(int) for n in (3, 7, 1)]
    ours = micro_prf(np.concatenate(pred), np.concatenate(gold))
    _, _, f, _ = precision_recall_fscore_support(np.concatenate(gold).ravel(), np.concatenate(pred).ravel(),
                                                 pos_label=0, average="binary", zero_division=0)
    assert ours["f1"] == pytest.approx(f)


def test_degenerate_predictors_match_the_spec():
    gold = np.array([[1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 0]])
    all_correct = micro_prf(np.ones_like(gold), gold)            # predicts no "wrong" cell
    assert all_correct["precision"] == 0 and all_correct["f1"] == 0
    all_wrong = micro_prf(np.zeros_like(gold), gold)
    assert all_wrong["recall"] == 1 and all_wrong["precision"] == pytest.approx(4 / 12)


def test_per_layer_accuracy_mean_and_gmean():
    gold = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    pred = np.array([[1, 1], [0, 1], [0, 1], [0, 0]])
    m = difficulty_metrics(pred, gold)
    assert m["layer_acc"] == pytest.approx([0.75, 0.75])
    assert m["mean_acc"] == pytest.approx(0.75)
    assert m["layer_acc"][0] == pytest.approx(accuracy_score(gold[:, 0], pred[:, 0]))
    tpr, tnr = 3 / 4, 3 / 4                                       # 1s found / 0s found
    assert m["tpr"] == pytest.approx(tpr) and m["tnr"] == pytest.approx(tnr)
    assert m["gmean"] == pytest.approx(np.sqrt(tpr * tnr))


def test_majority_is_per_layer_and_a_tie_counts_as_correct():
    train = np.array([[0, 1, 1], [0, 0, 1], [1, 1, 0], [0, 0, 1]])
    assert majority_bits(train).tolist() == [0, 1, 1]


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        micro_prf(np.ones((3, 4)), np.ones((3, 5)))


@pytest.mark.parametrize("bits,expected", [
    ([1, 1, 1, 1], 1), ([0, 0, 0, 0], 5), ([0, 1, 1, 1], 2), ([0, 1, 0, 1], 4), ([1, 1, 1, 0], 5), ([0, 0, 1, 1], 3),
])
def test_exit_layer_is_the_start_of_the_all_correct_suffix(bits, expected):
    assert exit_layer(bits) == expected


def test_exit_layer_back_to_bits():
    assert bits_from_exit([1, 3, 5], 4).tolist() == [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]]
    monotone = np.array([[0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]])
    assert (bits_from_exit(exit_layer(monotone), 4) == monotone).all()
    with pytest.raises(ValueError):
        bits_from_exit([6], 4)
