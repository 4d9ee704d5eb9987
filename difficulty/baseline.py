"""Torch-free pieces: the validation split carved from train, gold cells, and the Majority runs
(so a Majority job never pays for importing torch and transformers)."""

from __future__ import annotations

import numpy as np

from difficulty.formats import TokenSet
from difficulty.metrics import difficulty_metrics, majority_bits


def carve_validation(n: int, fraction: float, seed: int):
    """Seeded (train index, validation index); at least one row on each side."""
    n_val = min(n - 1, max(1, int(round(n * fraction))))
    order = np.random.default_rng(seed + 7919).permutation(n)  # offset: not the model's init stream
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def cells_of(data, index) -> np.ndarray:
    """Gold cells of the instances in `index`, in that order: (cells, L); human labels -> (N, 1)."""
    if isinstance(data, TokenSet):
        return np.concatenate([data.labels[i] for i in index], axis=0)
    labels = np.asarray(data.labels)[np.asarray(index, dtype=int)]
    return labels[:, None] if labels.ndim == 1 else labels


def with_select(metrics: dict, select_on: str) -> dict:
    if select_on not in ("mean_acc", "f1"):
        raise ValueError(f"config key 'difficulty.select_on': {select_on!r} is not one of mean_acc, f1")
    return {**metrics, "select": metrics[select_on]}


def majority_run(train, test, *, val_fraction: float, seed: int, select_on: str) -> dict:
    """Per layer, the majority label of the training cells, scored on validation and test."""
    train_idx, val_idx = carve_validation(len(train), val_fraction, seed)
    bits = majority_bits(cells_of(train, train_idx))
    record = {"majority_bits": bits.tolist(),
              "rows": {"train": len(train_idx), "validation": len(val_idx), "test": len(test)}}
    for name, data, index in (("validation", train, val_idx), ("test", test, np.arange(len(test)))):
        gold = cells_of(data, index)
        record[name] = with_select(difficulty_metrics(np.tile(bits, (gold.shape[0], 1)), gold), select_on)
    return record


def human_majority_run(train, test, *, val_fraction: float, seed: int) -> dict:
    """The training split's majority class (simple/difficult), its accuracy on every split."""
    train_idx, val_idx = carve_validation(len(train), val_fraction, seed)
    label = int(np.asarray(train.labels)[train_idx].mean() >= 0.5)
    record = {"majority_label": label, "history": [],
              "rows": {"train": len(train_idx), "validation": len(val_idx), "test": len(test)}}
    for name, data, index in (("train", train, train_idx), ("validation", train, val_idx),
                              ("test", test, np.arange(len(test)))):
        accuracy = float((np.asarray(data.labels)[index] == label).mean())
        record[name] = {"accuracy": accuracy, "select": accuracy}
    record["test_predictions"] = [label] * len(test)
    return record


def chance_test(predictions, gold) -> dict:
    """Test accuracy vs chance (the test split's majority-class rate, 50% on the balanced split):
    one-sided exact binomial test that the classifier beats chance, with a 95% interval."""
    from scipy.stats import binomtest

    gold = np.asarray(gold)
    chance = float(max(gold.mean(), 1 - gold.mean()))
    correct = int((np.asarray(predictions) == gold).sum())
    result = binomtest(correct, len(gold), p=chance, alternative="greater")
    low, high = result.proportion_ci(confidence_level=0.95)
    return {"correct": correct, "n": int(len(gold)), "chance": chance, "p_value": float(result.pvalue),
            "ci95": [float(low), float(high)]}
