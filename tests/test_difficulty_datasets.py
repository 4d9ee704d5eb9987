"""Difficulty datasets: one-line file:line errors on bad input, deterministic balanced builders,
round trips of the on-disk formats, config defaults and the published-numbers loader."""

import numpy as np
import pytest

from difficulty import datasets, formats, settings, sources, tables
from difficulty.formats import DataFormatError, PairSet, TokenSet

HEADER = "sentence1\tsentence2\tlabel\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("row,line,message", [
    ("a\tb\t[1, 0, 1]\n", 3, "3 entries, expected 4"),             # wrong length
    ("a\tb\t[1, 2, 1, 1]\n", 3, "'2' is not 0 or 1"),               # non-0/1 entry
    ("a\t[1, 1, 1, 1]\n", 3, "expected 3 tab-separated columns"),   # missing column
    ("a\tb\t1, 1, 1, 1\n", 3, "must be a list"),
])
def test_model_defined_bad_rows_name_file_and_line(tmp_path, row, line, message):
    path = write(tmp_path, "bad.txt", HEADER + "x\ty\t[1, 1, 0, 0]\n" + row)
    with pytest.raises(DataFormatError) as error:
        formats.read_pairs(path, multilabel=True)
    assert isinstance(error.value, ValueError)
    assert str(error.value).startswith(f"{path}:{line}: ")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_released_layer_count_is_enforced(tmp_path):
    path = write(tmp_path, "train.txt", HEADER + "x\ty\t[1, 1, 0, 0]\n")
    with pytest.raises(DataFormatError, match=r"train\.txt:2: label list has 4 entries, expected 12"):
        formats.read_pairs(path, multilabel=True, n_layers=12)


def test_human_and_header_errors(tmp_path):
    bad_label = write(tmp_path, "h.txt", HEADER + "x\ty\t0\nx\ty\t2\n")
    with pytest.raises(DataFormatError, match=r"h\.txt:3: label entry '2' is not 0 or 1"):
        formats.read_pairs(bad_label, multilabel=False)
    bad_header = write(tmp_path, "g.txt", "premise\thypothesis\tlabel\nx\ty\t0\n")
    with pytest.raises(DataFormatError, match=r"g\.txt:1: header"):
        formats.read_pairs(bad_header, multilabel=False)
    with pytest.raises(FileNotFoundError):
        formats.read_pairs(tmp_path / "missing.txt", multilabel=False)


@pytest.mark.parametrize("row,message", [
    ("a b\t11 1\n", "label group '1' has 1 bits, expected 2"),
    ("a b\t11\n", "2 tokens but 1 label groups"),
    ("a b\t11 1x\n", "'x' is not 0 or 1"),
    ("a b\n", "expected 2 tab-separated columns"),
])
def test_token_file_errors(tmp_path, row, message):
    path = write(tmp_path, "tok.tsv", "tokens\tlabel\nc\t01\n" + row)
    with pytest.raises(DataFormatError) as error:
        formats.read_tokens(path)
    assert str(error.value).startswith(f"{path}:3: ") and message in str(error.value)


def test_source_readers_name_file_and_line(tmp_path):
    nli = write(tmp_path, "dev.tsv", "\ufeffpremise\thypothesis\tlabel\r\na\tb\t0\r\na\tb\t7\r\n")
    with pytest.raises(DataFormatError, match=r"dev\.tsv:3: "):
        sources.read_nli_tsv(nli)
    conll = write(tmp_path, "ner.conll", "-DOCSTART- O\n\nJohn B-PER\nlives O\n\nParis\n")
    with pytest.raises(DataFormatError, match=r"ner\.conll:6: "):
        sources.read_conll(conll)
    snli = write(tmp_path, "snli_1.0_train.txt", "gold_label\ta\tb\tc\td\tsentence1\tsentence2\nmaybe\t\t\t\t\tx\ty\n")
    with pytest.raises(DataFormatError, match=r"snli_1\.0_train\.txt:2: gold label 'maybe'"):
        sources._snli_txt(snli)


def test_readers_parse_good_files(tmp_path):
    nli = write(tmp_path, "dev.tsv", "\ufeffpremise\thypothesis\tlabel\r\na\tb\t0\r\nc\td\t2\r\n")
    assert sources.read_nli_tsv(nli) == [("a", "b", "entailment"), ("c", "d", "contradiction")]
    conll = write(tmp_path, "ner.conll", "-DOCSTART- O\n\nJohn NNP B-PER\nlives VBZ O\n\nParis NNP B-LOC\n")
    assert sources.read_conll(conll) == [(["John", "lives"], ["B-PER", "O"]), (["Paris"], ["B-LOC"])]
    folder = tmp_path / "snli"
    folder.mkdir()
    for split, gold in (("train", "-"), ("dev", "neutral")):
        write(folder, f"snli_1.0_{split}.txt", f"gold_label\ta\tb\tc\td\tsentence1\tsentence2\n{gold}\t\t\t\t\tx {split}\ty\n")
    write(folder, "snli_1.0_test.jsonl", '{"gold_label": "entailment", "sentence1": "p", "sentence2": "h"}\n')
    assert sources.read_snli_release(folder) == [("x train", "y", "-"), ("x dev", "y", "neutral"), ("p", "h", "entailment")]


def test_pair_and_token_round_trips(tmp_path):
    pairs = PairSet(["a \"quoted\" one", "b"], ["c", "d"], np.array([[1, 0, 1], [0, 0, 1]], dtype=np.int8))
    path = write(tmp_path, "p.tsv", formats.format_pairs(pairs))
    back = formats.read_pairs(path, multilabel=True)
    assert back.text_a == pairs.text_a and (back.labels == pairs.labels).all()
    assert path.read_text().splitlines()[1].endswith("[1, 0, 1]")       # the released files' format
    tokens = TokenSet([["john", "##ny", "runs"]], [np.array([[0, 1], [1, 1], [1, 0]], dtype=np.int8)])
    back = formats.read_tokens(write(tmp_path, "t.tsv", formats.format_tokens(tokens)))
    assert back.tokens == tokens.tokens and (back.labels[0] == tokens.labels[0]).all()


def _snli_like(n_hard=40, n_per_class=60):
    rows = [(f"p{i}", f"h{i}", "-") for i in range(n_hard)]
    for c in sources.GOLD_LABELS:
        rows += [(f"p{c}{i}", f"h{c}{i}", c) for i in range(n_per_class)]
    return rows


def test_human_builder_is_balanced_even_over_classes_and_deterministic():
    rows = _snli_like()
    train, test, counts = datasets.build_human(rows, test_per_class=10, train_per_class=None, seed=3)
    assert (len(train), int(train.labels.sum())) == (60, 30)
    assert (len(test), int(test.labels.sum())) == (20, 10)
    assert counts["simple_per_class"] == {"entailment": {"train": 10, "test": 4}, "neutral": {"train": 10, "test": 3},
                                          "contradiction": {"train": 10, "test": 3}}
    assert not set(zip(train.text_a, train.text_b)) & set(zip(test.text_a, test.text_b))
    again, _, _ = datasets.build_human(rows, 10, None, seed=3)
    assert again.text_a == train.text_a and (again.labels == train.labels).all()
    other, _, _ = datasets.build_human(rows, 10, None, seed=4)
    assert other.text_a != train.text_a
    with pytest.raises(ValueError, match="test_per_class=40"):
        datasets.build_human(rows, test_per_class=40, train_per_class=None, seed=0)
    with pytest.raises(ValueError, match="'entailment' pairs"):
        datasets.build_human(_snli_like(n_hard=40, n_per_class=5), 10, None, seed=0)


def test_synthetic_sources_are_deterministic_and_have_ambiguous_pairs():
    a = sources.synthetic_snli(300, 0.1, seed=1)
    assert a == sources.synthetic_snli(300, 0.1, seed=1) and a != sources.synthetic_snli(300, 0.1, seed=2)
    golds = {g for _, _, g in a}
    assert golds == {*sources.GOLD_LABELS, "-"}
    assert 10 < sum(g == "-" for _, _, g in a) < 60
    tags = sources.synthetic_tagging(50, seed=0)
    assert tags == sources.synthetic_tagging(50, seed=0)
    assert all(len(w) == len(t) for w, t in tags) and {"PER", "LOC", "ORG", "O"} >= {x for _, t in tags for x in t}


def test_model_defined_splits():
    pairs = PairSet([str(i) for i in range(10)], ["x"] * 10, np.ones((10, 3), dtype=np.int8))
    train, test = datasets.split_in_order(pairs, 8)
    assert train.text_a == [str(i) for i in range(8)] and test.text_a == ["8", "9"]
    with pytest.raises(ValueError, match="n_train"):
        datasets.split_in_order(pairs, 10)
    tokens = TokenSet([[str(i)] for i in range(20)], [np.ones((1, 2), dtype=np.int8)] * 20)
    a_train, a_test = datasets.split_shuffled(tokens, 0.25, seed=5)
    b_train, b_test = datasets.split_shuffled(tokens, 0.25, seed=5)
    assert len(a_test) == 5 and a_test.tokens == b_test.tokens and a_train.tokens == b_train.tokens


def test_schema_fills_every_default_and_overrides_are_per_key():
    cfg = settings.validated({"difficulty": {"backbone": "tiny", "human": {"source": "synthetic", "size": 100},
                                             "sentence": {"source": "released", "released_dir": "x",
                                                          "training": {"bert": {"epochs": 2}}},
                                             "token": {"enabled": False}}})
    d = settings.section(cfg)
    assert d["enabled"] and d["seeds"] == [1] and d["target"] == "multilabel" and d["select_on"] == "mean_acc"
    assert d["sentence"]["predictors"] == ["majority", "linear-m", "linear-b", "bilstm", "bert"]
    loop = {"batch_size": 32, "eval_batch_size": 128, "grad_clip": 1.0, "weight_decay": 0.0, "max_seq_len": 128}
    # The authors' values per level x predictor (hashee-spec 3.1-3.3); Linear-B trains frozen probes.
    assert settings.training_settings(d, "human", "bert") == {
        **loop, "optimizer": "adamw", "lr": 3e-5, "epochs": 10, "warmup_ratio": 0.1}
    assert settings.training_settings(d, "sentence", "bert") == {          # one key overridden, the rest kept
        **loop, "optimizer": "adamw", "lr": 3e-5, "epochs": 2, "warmup_ratio": 0.1}
    assert settings.training_settings(d, "token", "bert")["epochs"] == 5
    assert settings.training_settings(d, "sentence", "linear-m") == {
        **loop, "optimizer": "adam", "lr": 1e-2, "epochs": 10, "warmup_ratio": 0.0}
    assert settings.training_settings(d, "sentence", "linear-b") == {
        **loop, "optimizer": "adam", "lr": 1e-3, "epochs": 20, "warmup_ratio": 0.0, "frozen": True}
    assert settings.training_settings(d, "token", "bilstm") == {
        **loop, "optimizer": "adam", "lr": 1e-3, "epochs": 10, "warmup_ratio": 0.0, "lstm_hidden": 256}
    assert settings.training_settings(d, "sentence", "majority") == {}
    assert settings.annotator_settings(d, "token") == {**loop, "optimizer": "adamw", "lr": 3e-5, "epochs": 5,
                                                      "warmup_ratio": 0.1}
    assert settings.annotator_val_fraction(d, "token") == 0.1
    assert settings.backbone_param(d, {"tiny": {"source": "random"}}, "sentence") == {"name": "tiny", "source": "random"}
    with pytest.raises(KeyError, match="difficulty.backbone"):
        settings.backbone_param(d, {}, "sentence")


def test_no_section_means_off_and_unvalidated_configs_are_refused():
    off = settings.section(settings.validated({}))
    assert off["enabled"] is False and settings.source_files(off, "human") == []
    assert settings.training_settings(off, "human", "bert")["epochs"] == 10       # complete even when off
    with pytest.raises(ValueError, match="config key 'difficulty': missing; validate"):
        settings.section({})


@pytest.mark.parametrize("difficulty,message", [
    ({"backbone": "b", "training": {"bert": {"lr": 1e-3}}}, r"'difficulty': Additional properties .*'training'"),
    ({"backbone": "b", "token": {"training": {"bert": {"learning_rate": 1}}}},
     r"'difficulty.token.training.bert': Additional properties .*'learning_rate'"),
    ({"backbone": "b", "human": {"training": {"linear-b": {}}}}, r"'difficulty.human.training': .*'linear-b'"),
    ({"backbone": "b", "sentence": {"training": {"bert": {"epochs": 0}}}},
     r"'difficulty.sentence.training.bert.epochs': 0 is less than the minimum"),
    ({"seeds": [1]}, r"'difficulty': 'backbone' is a required property"),
])
def test_bad_difficulty_settings_give_one_line_naming_the_key(difficulty, message):
    with pytest.raises(ValueError, match=message) as error:
        settings.validated({"difficulty": difficulty})
    assert "\n" not in str(error.value)


def test_one_line_source_errors():
    cfg = {"backbone": "tiny", "human": {"source": "synthetic"}, "token": {"enabled": False},
           "sentence": {"source": "released", "released_dir": "x"}}
    with pytest.raises(ValueError, match=r"config key 'difficulty.human.size': required when source is 'synthetic'"):
        settings.section(settings.validated({"difficulty": cfg}))
    cfg = {"backbone": "tiny", "token": {"enabled": False}, "human": {"source": "released", "released_dir": "x"},
           "sentence": {"source": "annotate", "train_data": {"source": "tsv"}}}
    with pytest.raises(ValueError, match=r"'difficulty.sentence.train_data.path'"):
        settings.section(settings.validated({"difficulty": cfg}))


def test_published_difficulty_cells_come_from_the_one_loader(tmp_path):
    from analysis.published import load_published

    path = write(tmp_path, "pub.csv", "table,row,backbone,task,metric,value,std,speedup,note\n"
                 "difficulty,Majority,sentence,SNLI,precision,60.5,,,x\n"
                 "difficulty,BERT,token,OntoNotes,f1,53.1,,,x\n"
                 "hash_functions,mi,ElasticBERT-6L,SST-2,score,85.5,0.49,3.3,x\n")
    published = tables.published_cells(load_published(path))
    assert published == {("sentence", "majority"): {"precision": 60.5}, ("token", "bert"): {"f1": 53.1}}


def test_hub_loaders_map_fields_without_the_network(monkeypatch):
    import datasets as hf

    calls = []

    def fake_load_dataset(path, *args, split=None, **kwargs):
        calls.append((path, split, kwargs.get("data_files")))
        if path == "stanfordnlp/snli":
            return [{"premise": "p", "hypothesis": "h", "label": -1}, {"premise": "q", "hypothesis": "g", "label": 2}]
        return [{"tokens": ["John", "runs"], "tags": [4, 0]}]

    monkeypatch.setattr(hf, "load_dataset", fake_load_dataset)
    rows = sources.load_snli_hub("stanfordnlp/snli", ["train", "validation"])
    assert rows == [("p", "h", "-"), ("q", "g", "contradiction")] * 2
    labelled = datasets.load_nli({"source": "hub", "split": "validation"}, seed=0)
    assert labelled == [("q", "g", "contradiction")]                  # no-majority pairs dropped
    ner = datasets.load_ner({"source": "hub", "split": "validation", "data_files": "hf://x/valid.json"}, seed=0)
    assert ner == [(["John", "runs"], ["4", "0"])] and calls[-1] == ("json", "validation", {"validation": "hf://x/valid.json"})


@pytest.mark.parametrize("name", ["config/config.yaml", "config/presets/demo.yaml", "config/presets/elue-minilm.yaml"])
def test_shipped_presets_have_a_usable_difficulty_section(name):
    import yaml

    from tests.conftest import REPO

    config = yaml.safe_load((REPO / name).read_text())
    d = settings.section(settings.validated(config))
    for level in settings.LEVELS:
        for predictor in d[level]["predictors"]:
            if predictor != "majority":
                assert settings.predictor_backbone(d, config.get("backbones", {}), level, predictor)["source"]
    for level in ("sentence", "token"):
        settings.annotator_backbone(d, config.get("backbones", {}), level)
