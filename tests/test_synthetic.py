"""Synthetic demo tasks: deterministic, sized, balanced, disjoint, labels in range, and built as designed."""

import time
from collections import Counter

import pytest

from earlyexit.data.synthetic import make_synthetic_task

SIZES = {"train": 600, "dev": 150, "test": 150}
CLASSES = {"synth-sentiment": 2, "synth-nli": 3}


@pytest.mark.parametrize("name", ["synth-sentiment", "synth-nli", "synth-similarity"])
def test_deterministic_and_seed_dependent(name):
    first = make_synthetic_task(name, SIZES, seed=3)
    assert make_synthetic_task(name, SIZES, seed=3) == first
    assert make_synthetic_task(name, dict(reversed(list(SIZES.items()))), seed=3) == first
    other = make_synthetic_task(name, SIZES, seed=4)
    assert sum(a == b for a, b in zip(first["train"], other["train"])) < 10


@pytest.mark.parametrize("name", ["synth-sentiment", "synth-nli", "synth-similarity"])
def test_sizes_and_disjoint_splits(name):
    splits = make_synthetic_task(name, SIZES, seed=0)
    assert {s: len(v) for s, v in splits.items()} == SIZES
    keys = {s: {(e.text_a, e.text_b) for e in v} for s, v in splits.items()}
    assert len(keys["train"]) == SIZES["train"]
    assert not keys["train"] & keys["dev"] and not keys["train"] & keys["test"] and not keys["dev"] & keys["test"]


@pytest.mark.parametrize("name", ["synth-sentiment", "synth-nli"])
def test_classification_labels_balanced_and_in_range(name):
    n = CLASSES[name]
    for split, examples in make_synthetic_task(name, SIZES, seed=0).items():
        counts = Counter(e.label for e in examples)
        assert set(counts) == set(range(n))
        assert max(counts.values()) - min(counts.values()) <= 1
        assert all(type(e.label) is int for e in examples)


def test_sentiment_shape():
    examples = make_synthetic_task("synth-sentiment", {"train": 1000}, seed=0)["train"]
    lengths = [len(e.text_a.split()) for e in examples]
    assert min(lengths) >= 6 and max(lengths) <= 20 and len(set(lengths)) == 15
    assert all(e.text_b is None for e in examples)
    negated = [e for e in examples if {"not", "never", "hardly"} & set(e.text_a.split())]
    assert 0.05 < len(negated) / len(examples) < 0.2      # a hard part exists, but most are plain
    # Zipf-like: the most frequent filler word is far more frequent than the median word.
    counts = sorted(Counter(w for e in examples for w in e.text_a.split()).values(), reverse=True)
    assert counts[0] > 20 * counts[len(counts) // 2]


def test_nli_construction():
    examples = make_synthetic_task("synth-nli", {"train": 900}, seed=0)["train"]
    assert all(6 <= len(e.text_a.split()) <= 14 for e in examples)
    for e in examples:
        premise, hypothesis = set(e.text_a.split()), e.text_b.split()
        if e.label == 2 and "not" in hypothesis:
            assert "not" not in premise
        elif e.label in (0, 1):
            assert "not" not in hypothesis
    # Entailment adds no new content word beyond hypernyms/synonyms; neutral always adds something.
    hypernyms = {"person", "child", "animal", "bicycle", "vehicle", "instrument", "food", "container", "an", "a"}
    for e in examples:
        new = set(e.text_b.split()) - set(e.text_a.split()) - hypernyms
        if e.label == 0:
            assert not new, e
        if e.label == 1:
            assert new, e


def test_similarity_scores():
    examples = make_synthetic_task("synth-similarity", {"train": 1000}, seed=0)["train"]
    scores = [e.label for e in examples]
    assert all(isinstance(s, float) and 0.0 <= s <= 5.0 and round(s, 2) == s for s in scores)
    assert sum(s < 1.5 for s in scores) > 100 and sum(s > 3.5 for s in scores) > 100   # spread over the range
    e = next(x for x in examples if x.label == 5.0)
    assert set(e.text_a.split()) == set(e.text_b.split())
    for e in examples[:200]:
        a, b = set(e.text_a.split()), set(e.text_b.split())
        assert e.label == round(5 * len(a & b) / len(a | b), 2)


@pytest.mark.parametrize("name", ["synth-sentiment", "synth-nli", "synth-similarity"])
def test_construction_kinds_are_recorded(name):
    from earlyexit.data.synthetic import KINDS, synthetic_kinds

    kinds = synthetic_kinds(name, SIZES, seed=3)
    assert synthetic_kinds(name, dict(reversed(list(SIZES.items()))), seed=3) == kinds
    assert {s: len(k) for s, k in kinds.items()} == SIZES
    assert {k for split in kinds.values() for k in split} == set(KINDS[name])   # every kind is made


# The hard (non-cue) share of each split: sentiment ~15% as in SST-2; most NLI pairs need the premise
# or a rarer construction; similarity edits that show only against sentence a are the majority.
@pytest.mark.parametrize("name,easy,low,high", [("synth-sentiment", {"cue"}, 0.08, 0.25),
                                                ("synth-nli", {"subset", "negation", "new-phrase"}, 0.25, 0.5),
                                                ("synth-similarity", {"edit", "unrelated"}, 0.4, 0.7)])
def test_every_split_has_its_hard_kinds_in_a_stated_share(name, easy, low, high):
    from earlyexit.data.synthetic import synthetic_kinds

    for split, kinds in synthetic_kinds(name, {"train": 1600, "dev": 200, "test": 200}, seed=0).items():
        assert low < sum(k not in easy for k in kinds) / len(kinds) < high, split


def test_kinds_describe_the_examples():
    from earlyexit.data.synthetic import _ANTONYMS, _OTHER_TOPIC, synthetic_kinds

    sizes = {"train": 800}
    for example, kind in zip(make_synthetic_task("synth-sentiment", sizes, 0)["train"],
                             synthetic_kinds("synth-sentiment", sizes, 0)["train"]):
        assert ("negation" in kind) == bool({"not", "never", "hardly"} & set(example.text_a.split())), example
    hypernyms = {"person", "child", "animal", "bicycle", "vehicle", "instrument", "food", "container", "an", "a"}
    for example, kind in zip(make_synthetic_task("synth-nli", sizes, 0)["train"],
                             synthetic_kinds("synth-nli", sizes, 0)["train"]):
        premise, hypothesis = set(example.text_a.split()), set(example.text_b.split())
        assert ("not" in hypothesis) == (kind == "negation"), example
        assert {"subset": 0, "negation": 2, "antonym": 2}.get(kind, 1) == example.label, example
        assert (kind == "subset") == (example.label == 0)
        if kind == "subset":
            assert hypothesis <= premise | hypernyms, example
        if kind == "antonym":    # a hypothesis adjective opposes a premise adjective
            assert any(_ANTONYMS.get(w) in premise for w in hypothesis), example
    other = set(_OTHER_TOPIC.words)
    for example, kind in zip(make_synthetic_task("synth-similarity", sizes, 0)["train"],
                             synthetic_kinds("synth-similarity", sizes, 0)["train"]):
        new = set(example.text_b.split()) - set(example.text_a.split()) - {"a", "an"}
        if kind == "unrelated":
            assert set(example.text_b.split()) <= other, example
        else:
            assert (kind == "edit-scene") == bool(new - other), example


def test_generation_is_fast():
    start = time.perf_counter()
    for name in ("synth-sentiment", "synth-nli", "synth-similarity"):
        make_synthetic_task(name, {"train": 2000}, seed=1)
    assert (time.perf_counter() - start) / 3 < 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown synthetic task 'SST-2'"):
        make_synthetic_task("SST-2", SIZES, seed=0)
    with pytest.raises(ValueError, match="split 'dev' must be a non-negative integer"):
        make_synthetic_task("synth-nli", {"train": 10, "dev": -1}, seed=0)


# ---------------------------------------------------------------- learnability
# What lets the demo's tiny model, trained from scratch on 1,600 examples, clear its bars (>= 90%
# sentiment, >= 75% NLI, correlation >= 80 on similarity): a linear bag-of-words model, which knows
# nothing a tiny model cannot learn from the same data, reaches them too.

def _words(example, view):
    """Features of one example: its text, the second sentence alone, or a pair view that also marks
    the words one sentence has and the other lacks (the comparison a pair model has to make)."""
    if view == "text":
        return example.text_a
    b = example.text_b.split()
    if view == "second":
        return " ".join(b)
    a = set(example.text_a.split())
    return " ".join([f"b_{w}" for w in b] + [f"new_{w}" for w in b if w not in a]
                    + [f"gone_{w}" for w in a if w not in set(b)])


def _bag_of_words_score(name, view, seed=0):
    from scipy.stats import pearsonr, spearmanr
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge

    splits = make_synthetic_task(name, {"train": 1600, "test": 400}, seed)
    vectorizer = CountVectorizer(token_pattern=r"\S+", ngram_range=(1, 2), binary=True)
    x_train = vectorizer.fit_transform([_words(e, view) for e in splits["train"]])
    x_test = vectorizer.transform([_words(e, view) for e in splits["test"]])
    y_train, y_test = [e.label for e in splits["train"]], [e.label for e in splits["test"]]
    if name == "synth-similarity":
        predicted = Ridge(alpha=1.0).fit(x_train, y_train).predict(x_test)
        return 50 * (pearsonr(predicted, y_test)[0] + spearmanr(predicted, y_test)[0])
    return 100 * LogisticRegression(C=10, max_iter=3000).fit(x_train, y_train).score(x_test, y_test)


@pytest.mark.parametrize("name,view,bar", [("synth-sentiment", "text", 92), ("synth-nli", "pair", 90),
                                           ("synth-similarity", "pair", 90)])
def test_a_bag_of_words_baseline_clears_the_demo_bar(name, view, bar):
    # A margin above the demo's bars (90 / 75 / 80): the tiny model is weaker than the ideal reader.
    assert _bag_of_words_score(name, view) >= bar


def test_nli_needs_both_sentences():
    # Antonym contradictions and new places are only visible against the premise.
    assert _bag_of_words_score("synth-nli", "pair") >= _bag_of_words_score("synth-nli", "second") + 4


def test_similarity_edits_show_in_the_second_sentence():
    # Most edits are words of another topic (the cue a hashed token exit keeps); the others are
    # scene words, found only by comparing with the first sentence.
    from earlyexit.data.synthetic import _OTHER_TOPIC, _SCENE_WORDS

    other = set(_OTHER_TOPIC.words)
    examples = make_synthetic_task("synth-similarity", {"train": 1000}, seed=0)["train"]
    assert not other & set(_SCENE_WORDS.words)
    assert all(not other & set(e.text_a.split()) for e in examples)
    new = Counter(w for e in examples for w in set(e.text_b.split()) - set(e.text_a.split()))
    assert 0.6 < sum(new[w] for w in other) / sum(new.values()) < 0.85
    assert _bag_of_words_score("synth-similarity", "second") >= 85


def test_every_sentiment_cue_word_is_seen_often():
    # A cue seen only a few times in training is a coin flip at test for a model trained from scratch.
    from earlyexit.data.synthetic import _NEGATIVE, _POSITIVE

    examples = make_synthetic_task("synth-sentiment", {"train": 1600}, seed=0)["train"]
    counts = Counter(w for e in examples for w in e.text_a.split())
    assert min(counts[w] for w in _POSITIVE.words + _NEGATIVE.words) >= 15
