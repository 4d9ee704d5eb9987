"""The hub converters on tiny in-memory hub splits (no network): label maps, scales, dropped rows,
SST binarisation, and the checks against ELUE's counts."""

from dataclasses import replace

import pytest

from earlyexit.data import hub
from earlyexit.data.examples import Example
from earlyexit.data.hub import HUB_SOURCES, HubSplitError, convert_hub_splits
from earlyexit.data.prepare import PREPARE_ERRORS


def tiny(task, counts, label_counts=None):
    """HUB_SOURCES[task] with ELUE's counts replaced by those of the tiny fake splits."""
    return replace(HUB_SOURCES[task], counts=counts, label_counts=label_counts or {})


def pairs(a, b, labels, label_column="label"):
    return {"premise": a, "hypothesis": b, label_column: labels}


def test_every_hub_source_records_elue_counts_for_all_splits():
    for name, source in HUB_SOURCES.items():
        assert set(source.counts) == {"train", "dev", "test"}, name
        assert set(source.splits) | set(source.unavailable) | ({"dev"} if source.carve_dev else set()) \
            == {"train", "dev", "test"}, name
        for split, counts in source.label_counts.items():
            assert sum(counts.values()) == source.counts[split], (name, split)


def test_scitail_label_map():
    rows = {"sentence1": ["P1", "P2", "P3"], "sentence2": ["H1", "H2", "H3"],
            "gold_label": ["entailment", "neutral", "entails"]}
    fake = {"train": rows, "validation": rows, "test": rows}
    out = convert_hub_splits("SciTail", fake, tiny("SciTail", {"train": 3, "dev": 3, "test": 3},
                                                   {"test": {0: 1, 1: 2}}))
    assert out["test"] == [Example("P1", "H1", 1), Example("P2", "H2", 0), Example("P3", "H3", 1)]


def test_scitail_unknown_label_is_one_line():
    rows = {"sentence1": ["P"], "sentence2": ["H"], "gold_label": ["contradiction"]}
    with pytest.raises(HubSplitError, match=r"^SciTail train row 0: label 'contradiction' has no mapping"):
        convert_hub_splits("SciTail", {"train": rows, "validation": rows, "test": rows},
                           tiny("SciTail", {"train": 1, "dev": 1, "test": 1}))


def test_stsb_scores_back_on_the_0_5_scale():
    rows = {"sentence1": ["A", "B", "C"], "sentence2": ["a", "b", "c"], "score": [1.0, 0.76, 0.0]}
    out = convert_hub_splits("STS-B", {"train": rows, "validation": rows, "test": rows},
                             tiny("STS-B", {"train": 3, "dev": 3, "test": 3}))
    assert [e.label for e in out["dev"]] == [5.0, 3.8, 0.0]
    assert all(isinstance(e.label, float) for e in out["dev"])


def test_snli_drops_pairs_without_gold_label():
    rows = pairs(["P0", "P1", "P2", "P3"], ["H0", "H1", "H2", "H3"], [0, -1, 2, 1])
    out = convert_hub_splits("SNLI", {"train": rows, "validation": rows, "test": rows},
                             tiny("SNLI", {"train": 3, "dev": 3, "test": 3}, {"dev": {0: 1, 1: 1, 2: 1}}))
    assert out["train"] == [Example("P0", "H0", 0), Example("P2", "H2", 2), Example("P3", "H3", 1)]


def test_sst2_binarises_the_sentence_score_at_one_half():
    # SST's classes: very negative, negative, neutral (low, exactly 0.5, high), positive, very positive.
    scores = [0.05, 0.3, 0.45, 0.5, 0.55, 0.7, 0.95]
    rows = {"sentence": [f"s{i}" for i in range(len(scores))], "label": scores}
    out = convert_hub_splits("SST-2", {"train": rows, "validation": rows, "test": rows},
                             tiny("SST-2", {"train": 7, "dev": 7, "test": 7}, {"train": {0: 4, 1: 3}}))
    assert [e.label for e in out["train"]] == [0, 0, 0, 0, 1, 1, 1]
    assert out["train"][0] == Example("s0", None, 0)


def test_sst2_source_is_the_sentence_level_split():
    source = HUB_SOURCES["SST-2"]
    assert source.dataset == "stanfordnlp/sst" and source.counts == {"train": 8544, "dev": 1101, "test": 2210}
    assert source.label_counts["test"] == {0: 1143, 1: 1067} and not source.carve_dev


def test_row_count_mismatch_names_task_split_and_counts():
    rows = pairs(["P0", "P1"], ["H0", "H1"], [0, 1])
    with pytest.raises(HubSplitError) as error:
        convert_hub_splits("SNLI", {"train": rows, "validation": rows, "test": rows},
                           tiny("SNLI", {"train": 2, "dev": 3, "test": 2}))
    message = str(error.value)
    assert message.startswith("SNLI dev: expected 3 examples as in ELUE, found 2 in stanfordnlp/snli (validation)")
    assert "data.sources: {SNLI: dir}" in message and "\n" not in message


def test_label_count_mismatch_is_reported():
    rows = {"sentence": ["a", "b"], "label": [0.2, 0.9]}
    with pytest.raises(HubSplitError, match=r"^SST-2 test: expected ELUE's label counts \{0: 2\}, found \{0: 1, 1: 1\}"):
        convert_hub_splits("SST-2", {"train": rows, "validation": rows, "test": rows},
                           tiny("SST-2", {"train": 2, "dev": 2, "test": 2}, {"test": {0: 2}}))


def test_real_elue_counts_reject_a_tiny_split():
    """Without the replaced counts, ELUE's own counts are checked."""
    rows = {"sentence1": ["A"], "sentence2": ["a"], "score": [0.5]}
    with pytest.raises(HubSplitError, match=r"^STS-B train: expected 5749 examples as in ELUE, found 1"):
        convert_hub_splits("STS-B", {"train": rows, "validation": rows, "test": rows})


def test_imdb_dev_is_carved_to_elue_sizes():
    rows = {"text": [f"r{i}" for i in range(10)], "label": [i % 2 for i in range(10)]}
    source = replace(HUB_SOURCES["IMDb"], carve_dev=3, counts={"train": 7, "dev": 3, "test": 10},
                     label_counts={"test": {0: 5, 1: 5}})
    out = convert_hub_splits("IMDb", {"train": rows, "test": rows}, source)
    assert sorted(e.text_a for e in out["train"] + out["dev"]) == sorted(rows["text"])
    assert convert_hub_splits("IMDb", {"train": rows, "test": rows}, source) == out   # fixed seed


def test_mrpc_test_cannot_come_from_the_hub(monkeypatch):
    """GLUE hides MRPC's test labels: one line naming the split and the way out, before any download."""
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)    # importing datasets would fail
    with pytest.raises(HubSplitError) as error:
        hub.download_task("MRPC", cache_dir=None)
    message = str(error.value)
    assert message.startswith("MRPC test split cannot be rebuilt from the hub: ")
    assert "data.sources: {MRPC: dir}" in message and "\n" not in message
    assert isinstance(error.value, PREPARE_ERRORS)
    rows = pairs(["P"], ["H"], [1], "label") | {"sentence1": ["P"], "sentence2": ["H"]}
    with pytest.raises(HubSplitError, match=r"^MRPC test split"):
        convert_hub_splits("MRPC", {"train": rows, "validation": rows})
