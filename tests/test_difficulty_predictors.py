"""Difficulty predictors, annotators and the study's glue on tiny random backbones (fast, offline)."""

import json

import numpy as np
import pytest
import torch

from difficulty import annotate, models, settings, sources, steps
from difficulty.baseline import chance_test, majority_run
from difficulty.formats import PairSet, TokenSet, read_pairs, read_tokens
from difficulty.human import run_human
from difficulty.predictors import Objective, run_predictor
from earlyexit.models.backbones import BackboneSpec

TINY = {"name": "tiny", "source": "random", "num_layers": 4, "hidden_size": 32, "num_attention_heads": 2,
        "intermediate_size": 64}
SPEC = BackboneSpec.from_config("tiny", {k: v for k, v in TINY.items() if k != "name"})
WORDS = "the a man woman dog runs sleeps in park room red blue big small".split()
HARD = [0, 0, 1, 1]  # a "hard" instance: wrong at layers 1-2, right from layer 3 on


def sentence_data(n, seed):
    """Pairs whose per-layer labels are decided by a cue word ("late" in the hypothesis)."""
    rng = np.random.default_rng(seed)
    a, b, labels = [], [], []
    for _ in range(n):
        hard = rng.random() < 0.4
        a.append(" ".join(rng.choice(WORDS, 5)))
        b.append(" ".join([*rng.choice(WORDS, 3), *(["late"] if hard else [])]))
        labels.append(HARD if hard else [1, 1, 1, 1])
    return PairSet(a, b, np.asarray(labels, dtype=np.int8))


def token_data(n, seed):
    rng = np.random.default_rng(seed)
    tokens, labels = [], []
    for _ in range(n):
        pieces = list(rng.choice([*WORDS, "late"], int(rng.integers(3, 8))))
        tokens.append(pieces)
        labels.append(np.asarray([HARD if p == "late" else [1, 1, 1, 1] for p in pieces], dtype=np.int8))
    return TokenSet(tokens, labels)


def study(**section):
    """A difficulty section as the workflow gets it: validated, every default filled by the schema."""
    return settings.validated({"difficulty": {"backbone": "tiny", "max_seq_len": 32, **section}})["difficulty"]


def level_settings(level, predictor, **given):
    return settings.training_settings(study(**{level: {"training": {predictor: given}}}), level, predictor)


def fit(predictor, train, test, target="multilabel", **overrides):
    # lr 0.1: the tiny random backbone's embeddings are small (std 0.02), so cues are learnt slowly at 1e-2.
    level = "token" if isinstance(train, TokenSet) else "sentence"
    given = {"lr": 1e-1, "epochs": 8, "batch_size": 16, **overrides}
    return run_predictor(predictor, train, test, spec=SPEC, settings=level_settings(level, predictor, **given),
                         target=target, select_on="f1", val_fraction=0.2, seed=0, device="cpu")


def small(predictor):
    return {"lstm_hidden": 16} if predictor == "bilstm" else {}


def test_majority_and_linear_m_learn_a_cue_at_the_sentence_level():
    train, test = sentence_data(120, 0), sentence_data(60, 1)
    majority = majority_run(train, test, val_fraction=0.2, seed=0, select_on="f1")
    assert majority["majority_bits"] == [1, 1, 1, 1] and majority["test"]["f1"] == 0
    record = fit("linear-m", train, test)
    assert record["test"]["f1"] > 0.8 > majority["test"]["f1"]
    assert record["test"]["cells"] == 60 and record["test"]["layers"] == 4
    assert len(record["history"]) == 8 and 1 <= record["selected_epoch"] <= 8
    assert record["rows"] == {"train": 96, "validation": 24, "test": 60}


@pytest.mark.parametrize("predictor", ["linear-b", "bilstm", "bert"])
def test_sentence_predictors_run_with_the_right_shapes(predictor):
    train, test = sentence_data(48, 0), sentence_data(20, 1)
    record = fit(predictor, train, test, epochs=2, lr=1e-3 if predictor == "bert" else 1e-1, **small(predictor))
    assert record["test"]["cells"] == 20 and len(record["test"]["layer_acc"]) == 4
    assert 0 <= record["test"]["f1"] <= 1 and len(record["history"]) == 2
    if predictor == "linear-b":
        assert record["probe_layers"] == [1, 2, 3, 4]


@pytest.mark.parametrize("predictor", ["linear-b", "bilstm", "bert"])
def test_token_predictors_score_every_word_piece(predictor):
    train, test = token_data(40, 0), token_data(16, 1)
    record = fit(predictor, train, test, epochs=2, lr=1e-3 if predictor == "bert" else 1e-1, **small(predictor))
    assert record["test"]["cells"] == sum(len(t) for t in test.tokens)


@pytest.mark.parametrize("data", [sentence_data, token_data])
def test_fine_tuned_linear_b_option(data):
    record = fit("linear-b", data(40, 0), data(16, 1), epochs=1, lr=1e-3, frozen=False)
    assert record["probe_layers"] == [1, 2, 3, 4] and record["training"]["lr"] == 1e-3
    assert record["model_settings"] == {"frozen": False}
    assert len(record["test"]["layer_acc"]) == 4


def test_bilstm_learns_the_token_cue():
    train, test = token_data(80, 0), token_data(30, 1)
    record = fit("bilstm", train, test, epochs=6, lstm_hidden=32)
    assert record["test"]["f1"] > 0.8


def test_exit_layer_form_trains_and_decodes_to_monotone_bits():
    train, test = sentence_data(80, 0), sentence_data(30, 1)
    record = fit("linear-m", train, test, target="exit-layer")
    assert record["test"]["f1"] > 0.8
    objective = Objective("exit-layer", 4)
    logits = torch.tensor([[5.0, 0, 0, 0, 0], [0, 0, 5.0, 0, 0], [0, 0, 0, 0, 5.0]])
    assert objective.n_out == 5
    assert objective.decode(logits).tolist() == [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]]
    assert Objective("multilabel", 4).decode(torch.tensor([[0.0, -1, 2, 3]])).tolist() == [[0, 0, 1, 1]]
    with pytest.raises(ValueError, match="difficulty.target"):
        Objective("ranking", 4)


def test_probe_layer_mapping():
    assert models.probe_layers(4, 4) == [1, 2, 3, 4]
    assert models.probe_layers(12, 6) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]


def test_lstm_ignores_padding():
    torch.manual_seed(0)
    lstm = models.BiLSTM(torch.randn(30, 8), 3, token_level=False, hidden=4).eval()
    short = {"input_ids": torch.tensor([[5, 6, 7]]), "attention_mask": torch.tensor([[1, 1, 1]])}
    padded = {"input_ids": torch.tensor([[5, 6, 7, 0, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 0, 0]])}
    assert torch.allclose(lstm(short), lstm(padded), atol=1e-6)
    mean = models.LinearM(torch.randn(30, 8), 3)
    assert torch.allclose(mean(short), mean(padded), atol=1e-6)


def test_human_run_records_accuracy_per_epoch_and_beats_chance():
    data = sentence_data(160, 0)
    train = PairSet(data.text_a[:120], data.text_b[:120], (data.labels[:120, 0] == 0).astype(np.int8))
    test = PairSet(data.text_a[120:], data.text_b[120:], (data.labels[120:, 0] == 0).astype(np.int8))
    record = run_human("linear-m", train, test, spec=SPEC,
                       settings=level_settings("human", "linear-m", lr=1e-1, epochs=6, batch_size=16),
                       val_fraction=0.2, seed=0, device="cpu")
    assert [set(h) >= {"train_accuracy", "validation_accuracy", "test_accuracy"} for h in record["history"]] == [True] * 6
    assert record["test"]["accuracy"] > 0.7 and len(record["test_predictions"]) == 40
    result = chance_test(record["test_predictions"], test.labels)
    assert result["p_value"] < 0.01 and result["n"] == 40


def test_chance_test_known_value():
    from scipy.stats import binomtest

    gold = np.array([0, 1] * 50)
    predictions = gold.copy()
    predictions[:40] = 1 - predictions[:40]                      # 60 of 100 correct
    result = chance_test(predictions, gold)
    assert result["correct"] == 60 and result["chance"] == 0.5
    assert result["p_value"] == pytest.approx(binomtest(60, 100, 0.5, alternative="greater").pvalue)


def test_annotators_label_every_instance_and_word_piece():
    rows = [r for r in sources.synthetic_snli(64, 0.0, seed=0)]
    given = {"annotator": {"lr": 1e-3, "epochs": 1, "batch_size": 16}}
    settings_ = settings.annotator_settings(study(sentence=given), "sentence")
    model, tokenizer, report = annotate.train_annotator(rows, spec=SPEC, token_level=False, settings=settings_,
                                                        val_fraction=0.25, seed=0, device="cpu")
    assert report["layers"] == 4 and len(report["validation_layer_accuracy"]) == 4
    assert report["training"]["optimizer"] == "adamw" and report["training"]["max_seq_len"] == 32
    labelled = annotate.label_pairs(model, tokenizer, rows[:10], settings_, "cpu")
    assert labelled.labels.shape == (10, 4) and set(np.unique(labelled.labels)) <= {0, 1}

    ner = sources.synthetic_tagging(40, seed=0)
    tags = annotate.tag_vocabulary(ner)
    model, tokenizer, _ = annotate.train_annotator(ner, spec=SPEC, token_level=True, settings=settings_,
                                                   val_fraction=0.25, seed=0, device="cpu", tag_ids=tags)
    tokens = annotate.label_tokens(model, tokenizer, ner[:5], settings_, tags, "cpu")
    for (words, _), pieces, bits in zip(ner[:5], tokens.tokens, tokens.labels):
        assert len(pieces) >= len(words) and bits.shape == (len(pieces), 4)


def test_steps_build_run_and_render(tmp_path):
    """The rules' functions chained on tiny synthetic data: datasets -> runs -> tables and figures."""
    out = tmp_path
    annotator = {"lr": 1e-3, "epochs": 1, "batch_size": 16}
    d = settings.section({"difficulty": study(
        backbones={"tiny": {k: v for k, v in TINY.items() if k != "name"}}, val_fraction=0.2, device="cpu",
        human={"source": "synthetic", "size": 400, "ambiguous_fraction": 0.15, "test_per_class": 10,
               "training": {"linear-m": {"epochs": 2, "lr": 1e-2}}},
        sentence={"n_train": 30, "train_data": {"source": "synthetic", "size": 60},
                  "label_data": {"source": "synthetic", "size": 40}, "annotator": dict(annotator)},
        token={"test_fraction": 0.25, "train_data": {"source": "synthetic", "size": 40},
               "label_data": {"source": "synthetic", "size": 20}, "annotator": dict(annotator)})})
    steps.build_human_dataset(settings.data_params(d, "human"), out / "h_train.tsv", out / "h_test.tsv", out / "h.json")
    counts = json.loads((out / "h.json").read_text())
    assert counts["test"] == {"rows": 20, "difficult": 10, "simple": 10}
    for level, build in (("sentence", steps.build_sentence_dataset), ("token", steps.build_token_dataset)):
        build(settings.data_params(d, level), settings.annotator_backbone(d, {}, level),
              settings.annotator_settings(d, level), settings.annotator_val_fraction(d, level), d["device"],
              out / f"{level[0]}_train.tsv", out / f"{level[0]}_test.tsv", out / f"{level[0]}.json")
    assert read_pairs(out / "s_train.tsv", multilabel=True, n_layers=4).labels.shape == (30, 4)
    assert len(read_tokens(out / "t_test.tsv")) == 5

    runs = []
    for level, seed in (("sentence", 1), ("sentence", 2), ("token", 1)):
        runs.append(out / f"{level}{seed}.json")
        steps.run_difficulty_predictor(level, "majority", seed, None, settings.training_settings(d, level, "majority"),
                                       settings.run_options(d, level), out / f"{level[0]}_train.tsv",
                                       out / f"{level[0]}_test.tsv", runs[-1])
    human_runs = [out / "hm.json", out / "hl.json"]
    for predictor, path in zip(("majority", "linear-m"), human_runs):
        steps.run_human_predictor(predictor, 1, settings.predictor_backbone(d, {}, "human", predictor),
                                  settings.training_settings(d, "human", predictor), settings.run_options(d, "human"),
                                  out / "h_train.tsv", out / "h_test.tsv", path)
    assert json.loads(human_runs[1].read_text())["training"]["epochs"] == 2

    published = out / "pub.csv"
    published.write_text("table,row,backbone,task,metric,value,std,speedup,note\n"
                         "difficulty,Majority,sentence,SNLI,f1,45.7,,,x\n")
    steps.write_difficulty_model(runs, published, "unit", out / "d.csv", out / "d.md", out / "d.tex")
    md = (out / "d.md").read_text()
    assert "| Majority |" in md and "45.7" in md and "published" in md and "± 0.0" in md
    steps.write_difficulty_human(human_runs, "unit", out / "hu.csv", out / "hu.md", out / "hu.tex")
    steps.plot_difficulty_human_accuracy(human_runs, out / "hu.png", out / "hu.pdf")
    assert "Linear-M" in (out / "hu.md").read_text() and (out / "hu.png").stat().st_size > 0
    steps.plot_difficulty_layer_labels({"sentence": {"train": out / "s_train.tsv", "test": out / "s_test.tsv"},
                                        "token": {"train": out / "t_train.tsv", "test": out / "t_test.tsv"}},
                                       out / "l.png", out / "l.pdf")
    assert (out / "l.pdf").stat().st_size > 0
