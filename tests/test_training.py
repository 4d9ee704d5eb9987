"""Training loop: same seed -> same numbers on CPU; it learns; dev selection is honoured."""

import numpy as np
import pytest
import torch

from earlyexit.batching import attach_exit_layers
from earlyexit.encoded import EncodedSplit
from earlyexit.hashing import frequency_hash
from earlyexit.models.hashee import HashEEForSequenceClassification
from earlyexit.torch_setup import linear_warmup_decay
from earlyexit.fine_tuning import fine_tune
from earlyexit.training import TrainConfig
from tests.conftest import tiny_classifier

LAYERS = 3


def toy_split(n, seed):
    """Label 1 iff token 7 occurs: learnable by a tiny transformer in a few epochs."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for _ in range(n):
        body = rng.integers(10, 60, rng.integers(4, 12))
        label = int(rng.random() < 0.5)
        if label:
            body[rng.integers(len(body))] = 7
        ids.append(np.concatenate([[2], body, [3]]))
        labels.append(label)
    return EncodedSplit(input_ids=ids, token_type_ids=None, labels=np.array(labels))


def run(seed, token_hash=None, epochs=3):
    splits = {name: toy_split(n, i) for i, (name, n) in enumerate([("train", 256), ("dev", 64), ("test", 64)])}
    for i, split in enumerate(splits.values()):
        attach_exit_layers(split, token_hash, LAYERS, np.random.default_rng([seed, i]))
    model = HashEEForSequenceClassification(tiny_classifier("bert", LAYERS, num_labels=2, seed=seed))
    cfg = TrainConfig(lr=2e-3, batch_size=16, eval_batch_size=32, epochs=epochs, evals_per_epoch=2, warmup_ratio=0.1,
                      weight_decay=0.0, grad_clip=1.0, max_seq_len=64, track_best_on_test=True)
    return fine_tune(model, splits["train"], splits["dev"], splits["test"], metric="accuracy", regression=False,
                     cfg=cfg, seed=seed, pad_id=0, device=torch.device("cpu"), progress=False)


def test_same_seed_same_numbers():
    torch.set_num_threads(1)
    a, b = run(seed=5), run(seed=5)
    assert a["test"] == b["test"] and a["dev"] == b["dev"]
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_it_learns_and_selects_on_dev():
    result = run(seed=0, epochs=6)
    assert result["test"]["score"] > 75.0
    dev_scores = [h["dev"]["score"] for h in result["history"]]
    assert result["dev"]["score"] == max(dev_scores)
    selected = next(h for h in result["history"] if h["step"] == result["selected_step"])
    assert selected["test"]["score"] == result["test"]["score"]   # test = the dev-selected checkpoint
    assert result["best_on_test"]["score"] == max(h["test"]["score"] for h in result["history"])


def test_hashee_training_runs_with_a_fitted_hash():
    train = toy_split(256, 0)
    token_hash = frequency_hash(train.input_ids, 120, [0, 2, 3], LAYERS, 3)
    result = run(seed=1, token_hash=token_hash)
    assert 0.0 <= result["test"]["score"] <= 100.0 and result["train_seconds"] > 0


def test_linear_warmup_decay_known_factors():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = linear_warmup_decay(optimizer, total_steps=8, warmup_ratio=0.25)
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.5, 1.0, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])
