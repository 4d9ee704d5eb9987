"""The released HashEE difficulty files (../shared/data/hashee_difficulty): counts, sha256 and the
Majority sanity anchor of the paper's table. Skipped when the shared data folder is absent."""

from pathlib import Path

import numpy as np
import pytest

from difficulty import datasets, formats
from difficulty.baseline import majority_run

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RELEASED = SHARED / "hashee_difficulty"

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not RELEASED.is_dir(), reason=f"{RELEASED} absent (real data not available)")]

# hashee-spec section 9.9
SHA256 = {
    ("human", "train"): "b67018c867cf36e3c1d5e7245721ff32a4fdef545bf08ad2b4eb135b237873da",
    ("human", "test"): "1209345896a297609e39804ab15536c616aeb5509b6aa10f8584afa4cceca93b",
    ("model", "train"): "74f51354a82ec82bf149d625511f346354a2c16b54604085ba1dd5ea6a514759",
    ("model", "test"): "0e8d2381718557cfb1d5838979194c140bf71d90690fa79bf5eb64be63576778",
}
PUBLISHED_MAJORITY = {"precision": 60.5, "recall": 36.7, "f1": 45.7}


@pytest.mark.parametrize("kind,split", list(SHA256))
def test_released_files_are_the_published_ones(kind, split):
    assert formats.sha256(RELEASED / kind / f"{split}.txt") == SHA256[(kind, split)]


def test_human_counts():
    train, test = datasets.read_released(RELEASED / "human", "human")
    assert datasets.human_counts(train, test) == {"train": {"rows": 1237, "difficult": 619, "simple": 618},
                                                  "test": {"rows": 1000, "difficult": 500, "simple": 500}}


def test_model_defined_counts_and_layer_rates():
    train, test = datasets.read_released(RELEASED / "model", "model")
    assert train.labels.shape == (8000, 12) and test.labels.shape == (1842, 12)
    expected_train = [.381, .435, .563, .772, .792, .803, .809, .815, .819, .821, .825, .825]  # hashee-spec 2.2
    assert np.allclose(train.labels.mean(axis=0), expected_train, atol=6e-4)
    assert formats.summarize_layers(test)["all_correct"] == 399
    assert formats.summarize_layers(test)["all_wrong"] == 118


def test_majority_anchor_matches_the_published_row():
    train, test = datasets.read_released(RELEASED / "model", "model")
    # Majority fitted on all of train (val_fraction only carves a validation split it never uses
    # for fitting; a tiny one keeps the per-layer majorities those of the whole training file).
    record = majority_run(train, test, val_fraction=1e-4, seed=0, select_on="mean_acc")
    assert record["majority_bits"] == [0, 0] + [1] * 10
    for metric, published in PUBLISHED_MAJORITY.items():
        assert abs(100 * record["test"][metric] - published) <= 0.5, metric
    assert record["test"]["mean_acc"] == pytest.approx(0.759, abs=1e-3)  # hashee-spec 3.4 reference value
