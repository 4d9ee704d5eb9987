"""The readers on the real ELUE files in ../shared/data (skipped when that folder is absent)."""

from collections import Counter
from pathlib import Path

import pytest

from earlyexit.data.elue import MissingSplitError, load_elue_task, read_elue_split
from earlyexit.data.examples import read_examples
from earlyexit.data.prepare import prepare_task
from earlyexit.data.tasks import get_task

ELUE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "elue"

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not ELUE.is_dir(), reason=f"real ELUE data not found at {ELUE}")]

SST2, SNLI, MRPC, STSB = (get_task(n) for n in ("SST-2", "SNLI", "MRPC", "STS-B"))


def label_counts(examples):
    return dict(sorted(Counter(e.label for e in examples).items()))


@pytest.mark.parametrize("file, rows, counts", [
    ("train.tsv", 8544, {0: 4244, 1: 4300}),
    ("dev.tsv", 1101, {0: 558, 1: 543}),
    ("test_full.tsv", 2210, {0: 1143, 1: 1067}),
])
def test_sst2_splits(file, rows, counts):
    examples = read_elue_split(ELUE / "SST-2" / file, SST2)
    assert len(examples) == rows
    assert label_counts(examples) == counts
    assert all(e.text_a and e.text_b is None for e in examples)


@pytest.mark.parametrize("file, rows, counts", [
    ("dev.tsv", 9842, {0: 3329, 1: 3235, 2: 3278}),          # BOM + CRLF
    ("test_full.tsv", 9824, {0: 3368, 1: 3219, 2: 3237}),    # official SNLI test class counts
])
def test_snli_splits(file, rows, counts):
    examples = read_elue_split(ELUE / "SNLI" / file, SNLI)
    assert len(examples) == rows
    assert label_counts(examples) == counts
    assert examples[0].text_a.startswith(("Two women", "This church")) and "\r" not in examples[0].text_b


@pytest.mark.parametrize("file, rows, counts", [
    ("train.tsv", 3668, {0: 1194, 1: 2474}),
    ("dev.tsv", 408, {0: 129, 1: 279}),
    ("test_full.tsv", 1725, {0: 578, 1: 1147}),
])
def test_mrpc_splits(file, rows, counts):
    examples = read_elue_split(ELUE / "MRPC" / file, MRPC)
    assert len(examples) == rows
    assert label_counts(examples) == counts
    assert all(e.text_a and e.text_b for e in examples)


@pytest.mark.parametrize("file, rows, mean", [("train.tsv", 5749, 2.70), ("dev.tsv", 1500, 2.36),
                                              ("test_full.tsv", 1379, 2.61)])
def test_stsb_splits(file, rows, mean):
    examples = read_elue_split(ELUE / "STS-B" / file, STSB)
    assert len(examples) == rows
    assert sum(e.label for e in examples) / rows == pytest.approx(mean, abs=0.005)
    assert all(0.0 <= e.label <= 5.0 for e in examples)


def texts(examples):
    return [t for e in examples for t in e[:2] if t is not None]


@pytest.mark.parametrize("file", ["train.tsv", "dev.tsv", "test.tsv", "test_full.tsv"])
def test_stsb_csv_quoting_is_fully_decoded(file):
    found = texts(read_elue_split(ELUE / "STS-B" / file, STSB, labelled=file != "test.tsv"))
    assert not [t for t in found if '""' in t]
    # Decoding keeps the quotes that are text: e.g. `A dog in a "superman" shirt`.
    assert sum('"' in t for t in found) > 0


@pytest.mark.parametrize("task", [SST2, SNLI, MRPC, STSB])
def test_unlabelled_test_is_the_same_text_as_test_full(task):
    unlabelled = read_elue_split(ELUE / task.name / "test.tsv", task, labelled=False)
    full = read_elue_split(ELUE / task.name / "test_full.tsv", task)
    assert [e[:2] for e in unlabelled] == [e[:2] for e in full]
    assert all(e.label is None for e in unlabelled)
    assert not [t for t in texts(full) if '""' in t]


def test_mrpc_real_quotes_survive():
    """MRPC's space-separated `"` is text: e.g. a sentence wrapped in `" ... "` keeps both."""
    for file in ("train.tsv", "test_full.tsv"):
        found = texts(read_elue_split(ELUE / "MRPC" / file, MRPC))
        assert any(t.startswith('" ') and t.endswith(' "') for t in found), file


def test_load_mrpc_and_stsb_tasks():
    assert {s: len(v) for s, v in load_elue_task(ELUE, MRPC).items()} == {"train": 3668, "dev": 408, "test": 1725}
    assert {s: len(v) for s, v in load_elue_task(ELUE, STSB).items()} == {"train": 5749, "dev": 1500, "test": 1379}


def test_load_sst2_and_prepare(tmp_path):
    splits = load_elue_task(ELUE, SST2)
    assert {s: len(v) for s, v in splits.items()} == {"train": 8544, "dev": 1101, "test": 2210}
    summary = prepare_task("SST-2", "dir", tmp_path, data_dir=str(ELUE))
    assert summary["splits"]["test"]["label_counts"] == {"0": 1143, "1": 1067}
    assert read_examples(tmp_path / "test.tsv", SST2) == splits["test"]


def test_missing_snli_train_says_so():
    with pytest.raises(MissingSplitError) as error:
        load_elue_task(ELUE, SNLI)
    message = str(error.value)
    assert message.startswith(f"{ELUE / 'SNLI' / 'train.tsv'}: no such file; the train split of SNLI is absent")
    assert "dev.tsv, test.tsv, test_full.tsv" in message and "\n" not in message


def test_missing_mrpc_folder_says_so(tmp_path):
    """A data_dir that holds some tasks (here SST-2, linked from the real data) but not MRPC."""
    data_dir = tmp_path / "elue"
    data_dir.mkdir()
    (data_dir / "SST-2").symlink_to(ELUE / "SST-2", target_is_directory=True)
    with pytest.raises(MissingSplitError) as error:
        load_elue_task(data_dir, MRPC)
    message = str(error.value)
    assert message.startswith(f"{data_dir / 'MRPC' / 'train.tsv'}: no such file; the folder {data_dir / 'MRPC'} does not exist")
    assert "\n" not in message
