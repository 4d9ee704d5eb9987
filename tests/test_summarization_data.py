"""Summarization data: the normalized pair format, the synthetic stand-in, the hub converters (fed
tiny fake hub splits, as tests/test_hub_converters.py does for classification), ROUGE."""

import dataclasses

import pytest

from earlyexit.data import summarization as S
from earlyexit.data.examples import DataFormatError
from earlyexit.generation.rouge import rouge


def test_pairs_round_trip_keeps_tabs_newlines_and_backslashes(tmp_path):
    pairs = [S.Pair("a\tb \\n c\nnext line", "first.\nsecond \\ one."), S.Pair("x", "y")]
    S.write_pairs(tmp_path / "p.tsv", pairs)
    assert S.read_pairs(tmp_path / "p.tsv") == pairs
    (tmp_path / "bad.tsv").write_text("source\ttarget\nonly one column\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv:2: expected 2 tab-separated columns"):
        S.read_pairs(tmp_path / "bad.tsv")


def test_synthetic_summary_is_the_marked_sentence_and_splits_are_disjoint():
    splits = S.make_synthetic_summarization({"train": 200, "dev": 30, "test": 30}, seed=0)
    assert splits == S.make_synthetic_summarization({"train": 200, "dev": 30, "test": 30}, seed=0)
    sources = [p.source for split in splits.values() for p in split]
    assert len(set(sources)) == len(sources)
    firsts = 0
    for pair in splits["train"]:
        marked = [s.strip() for s in pair.source.split(" . ") if s.strip().startswith(S.MARKER)]
        assert len(marked) == 1 and pair.target == marked[0][len(S.MARKER) + 1:].rstrip(" .") + " ."
        firsts += pair.source.startswith(S.MARKER)
    assert 0.15 < firsts / len(splits["train"]) < 0.5     # lead-1 is right only now and then


def test_cnn_dm_counts_are_checked():
    rows = {"train": [{"article": "a b.", "highlights": "a."}] * 3, "validation": [{"article": "c.", "highlights": "c."}],
            "test": [{"article": "d.", "highlights": "d."}] * 2}
    with pytest.raises(S.SummarizationSplitError, match="CNN-DM: train has 3 rows, expected 287113"):
        S.convert_hub_pairs("CNN-DM", rows)
    small = dataclasses.replace(S.HUB_SUMMARIZATION["CNN-DM"], counts={"train": 3, "dev": 1, "test": 2})
    original = S.HUB_SUMMARIZATION["CNN-DM"]
    S.HUB_SUMMARIZATION["CNN-DM"] = small
    try:
        out = S.convert_hub_pairs("CNN-DM", rows)
    finally:
        S.HUB_SUMMARIZATION["CNN-DM"] = original
    assert [len(out[s]) for s in ("train", "dev", "test")] == [3, 1, 2] and out["dev"] == [S.Pair("c.", "c.")]


def test_reddit_is_carved_80_10_10_with_a_fixed_seed():
    rows = [{"documents": f"post {i}.", "tldr": f"tl {i}."} for i in range(100)]
    with pytest.raises(S.SummarizationSplitError, match="has 100 rows, expected 42139"):
        S.convert_hub_pairs("Reddit-TIFU", {"train": rows})
    fake = dataclasses.replace(S.HUB_SUMMARIZATION["Reddit-TIFU"], total=100, counts={"train": 80, "dev": 10, "test": 10})
    original, S.HUB_SUMMARIZATION["Reddit-TIFU"] = S.HUB_SUMMARIZATION["Reddit-TIFU"], fake
    try:
        first, second = (S.convert_hub_pairs("Reddit-TIFU", {"train": rows}) for _ in range(2))
    finally:
        S.HUB_SUMMARIZATION["Reddit-TIFU"] = original
    assert first == second and {len(v) for v in first.values()} == {80, 10}
    assert len({p.source for v in first.values() for p in v}) == 100
    # the real counts are the same 80/10/10 cut of the 42,139 pairs
    assert sum(original.counts.values()) == original.total and original.counts["train"] == int(0.8 * original.total)


def test_missing_columns_and_unavailable_sources_stop_with_one_line():
    with pytest.raises(S.SummarizationSplitError, match="columns 'abstract' and 'title' expected"):
        S.convert_hub_pairs("CSL", {"csl": [{"text": "x"}] * 10})
    with pytest.raises(S.SummarizationSplitError, match=r"TTNews.*data.sources: \{TTNews: dir\}"):
        S.convert_hub_pairs("TTNews", {})


def test_local_cpt_json_reader(tmp_path):
    (tmp_path / "t.json").write_text('{"article": "文章。", "summarization": "摘要"}\n{"article": "b", "summarization": "c"}\n',
                                     encoding="utf-8")
    assert S.read_cpt_json(tmp_path / "t.json") == [S.Pair("文章。", "摘要"), S.Pair("b", "c")]
    (tmp_path / "bad.json").write_text('{"article": "a"}\n')
    with pytest.raises(DataFormatError, match=r"bad.json:1: expected an object with 'article' and 'summarization'"):
        S.read_cpt_json(tmp_path / "bad.json")


def test_rouge_variants():
    english = rouge(["The cats sat. They slept."], ["the cat sat.\nit slept."], "en")
    assert english["rougeL_variant"] == "rougeLsum" and english["rouge1"] == pytest.approx(100 * 4 / 5)  # stemmed
    assert rouge(["a b c"], ["a b c"], "en")["score"] == pytest.approx(100.0)
    chinese = rouge(["我 爱 北京"], ["我爱北京天安门"], "zh")      # characters, spaces ignored
    assert chinese["rouge1"] == pytest.approx(100 * 8 / 11)      # P = 4/4, R = 4/7
    assert chinese["rougeL_variant"] == "rougeL"
    with pytest.raises(ValueError, match="language 'fr'"):
        rouge(["a"], ["a"], "fr")
