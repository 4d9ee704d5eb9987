"""Static baselines: an n-layer truncation is a model of n layers (parameters, FLOPs, weights); its
rows are named per backbone family; which runs a config makes per backbone; DistilBERT and TinyBERT
run through the same loop on a local stand-in of their hub checkpoints, and get no job offline."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from analysis.collect import read_run
from earlyexit.models.backbones import load_classifier, stand_in_name
from earlyexit.runs.experiment import run_experiment
from earlyexit.cost.flops import ModelDims, full_flops
from earlyexit.methods import METHODS, backbone_runs, hub_unreachable
from earlyexit.methods.truncated import backbone_family
from tests.conftest import tiny_backbone, tokenized_synth_nli
from tests.test_methods_contract import ONE_STEP

BACKBONE = replace(tiny_backbone(), num_layers=3, paper_backbone="ElasticBERT-6L")


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    return tokenized_synth_nli(tmp_path_factory.mktemp("static"), train_size=16)


def run(tokenized, method, variant, backbone=BACKBONE, name=None):
    out = tokenized / f"runs/{name or method}/{variant}.json"
    record = run_experiment(preset="t", task_name="synth-nli", tokenized=tokenized / "tok.npz",
                            tokenized_meta=tokenized / "tok.json", backbone=backbone, method=method, variant=variant,
                            artifacts={}, train_config=ONE_STEP, seed=1, reference_layers=12, out_json=out,
                            checkpoint=out.with_suffix(".pt"), device="cpu", progress=False)
    read_run(out)       # a valid record
    return record, torch.load(out.with_suffix(".pt"), weights_only=True)


def test_a_truncation_is_a_model_of_its_first_n_layers(tokenized):
    full = load_classifier(BACKBONE, 3, seed=1)
    cut = load_classifier(replace(BACKBONE, num_layers=1), 3, seed=1)
    per_layer = sum(p.numel() for p in full.bert.encoder.layer[0].parameters())
    assert sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in cut.parameters()) == 2 * per_layer

    record, weights = run(tokenized, "truncated", "1L")
    # a random backbone only stands in for ElasticBERT: the row names what ran and the paper row it replaces
    assert record["label"] == "tiny-2L 1L (for ElasticBERT-1L)"
    assert record["num_layers"] == 1 and record["family"] == "static"
    assert any(k.startswith("bert.encoder.layer.0.") for k in weights)
    assert not any(k.startswith("bert.encoder.layer.1.") for k in weights)
    # FLOPs: exactly a 1-layer model on each test instance; 12-layer reference over it
    from earlyexit.data.encoded import load_encoded
    lengths = [len(ids) for ids in load_encoded(tokenized / "tok.npz")["test"].input_ids]
    dims = ModelDims(hidden=32, heads=2, intermediate=64, num_layers=1, num_labels=3)
    assert record["flops"]["method_per_instance"] == pytest.approx(np.mean([full_flops(n, dims) for n in lengths]))
    assert record["speedup"]["flops_vs_own_full"] == pytest.approx(1.0)
    reference = ModelDims(hidden=32, heads=2, intermediate=64, num_layers=12, num_labels=3)
    assert record["speedup"]["flops"] == pytest.approx(
        sum(full_flops(n, reference) for n in lengths) / sum(full_flops(n, dims) for n in lengths))


def test_a_truncation_deeper_than_the_backbone_is_refused(tokenized):
    with pytest.raises(ValueError, match="has 3 layers, cannot keep the first 4"):
        run(tokenized, "truncated", "4L")


def test_rows_are_named_by_the_backbone_family():
    truncated = METHODS["truncated"]
    assert backbone_family("ElasticBERT-12L") == "ElasticBERT" and backbone_family("BERT") == "BERT"
    assert truncated.row_label("3L", "RoBERTa") == "RoBERTa-3L"
    assert truncated.row_label("3L", "ElasticBERT-6L", "minilm-6L") == "minilm-6L 3L (for ElasticBERT-3L)"
    # the paper's checkpoints (hub) are the paper's backbones; random and MiniLM backbones stand in
    assert stand_in_name(replace(BACKBONE, source="hub", hub_id="fnlp/elasticbert-base")) is None
    assert stand_in_name(BACKBONE) == "tiny-2L" and stand_in_name(replace(BACKBONE, paper_backbone=None)) is None
    assert truncated.published_row("elue_main", "3L", "ALBERT") == "ALBERT-3L"
    assert METHODS["hashee"].published_row("elue_main", "frequency", "ElasticBERT-6L") == "HashEE"
    assert METHODS["hashee"].published_row("elue_main", "frequency", "BERT") == ""


def test_runs_per_backbone_follow_truncations_methods_and_the_network():
    config = {"methods": {"full": None, "truncated": None, "distilbert": None, "tinybert": None},
              "requirements": {"network": True},
              "backbones": {"eb": {"source": "hub", "hub_id": "fnlp/elasticbert-base", "num_layers": 12,
                                   "truncations": [1, 12], "methods": ["truncated"]},
                            "bert": {"source": "hub", "hub_id": "bert-base-uncased", "truncations": [3]},
                            "tiny": {"source": "random", "num_layers": 2}}}
    assert backbone_runs(config, "eb") == [("truncated", "1L"), ("truncated", "12L")]
    assert backbone_runs(config, "bert") == [("full", "default"), ("truncated", "3L"), ("distilbert", "default"),
                                             ("tinybert", "default")]
    # no truncations list: every configured depth up to the backbone's; no BERT vocabulary: no DistilBERT
    assert backbone_runs(config, "tiny") == [("full", "default"), ("truncated", "1L"), ("truncated", "2L")]
    offline = {**config, "requirements": {"network": False}}
    assert hub_unreachable(METHODS["distilbert"], offline) and not hub_unreachable(METHODS["truncated"], offline)
    assert backbone_runs(offline, "bert") == [("full", "default"), ("truncated", "3L")]


def _tiny_distilbert(folder):
    from transformers import DistilBertConfig, DistilBertModel

    torch.manual_seed(0)       # a pretrained encoder without a task head, like the hub checkpoint
    DistilBertModel(DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                                         max_position_embeddings=128)).save_pretrained(folder)


def _tiny_bert(folder):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder)


@pytest.mark.parametrize("method, build", [("distilbert", _tiny_distilbert), ("tinybert", _tiny_bert)])
def test_hub_checkpoint_methods_fine_tune_through_the_loop(tokenized, monkeypatch, method, build):
    folder = tokenized / f"stand-in-{method}"
    build(folder)
    monkeypatch.setattr(METHODS[method], "checkpoint", str(folder))     # a local stand-in of the hub id
    record, weights = run(tokenized, method, "default")
    assert record["num_layers"] == 2 and record["label"] == METHODS[method].paper_name
    assert record["history"][-1]["step"] == 1 and 0 <= record["test"]["score"] <= 100
    assert record["speedup"]["flops"] == pytest.approx(record["flops"]["reference_per_instance"]
                                                       / record["flops"]["method_per_instance"])
    assert METHODS[method].needs_hub and any("classifier" in k for k in weights)
