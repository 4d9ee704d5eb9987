"""Shared fixtures: tiny randomly initialised BERT/RoBERTa classifiers (fast, offline)."""

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def tiny_classifier(kind: str = "bert", num_layers: int = 4, num_labels: int = 3, seed: int = 0):
    from transformers import (BertConfig, BertForSequenceClassification, RobertaConfig,
                              RobertaForSequenceClassification)

    torch.manual_seed(seed)
    common = dict(vocab_size=120, hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=4,
                  intermediate_size=64, num_labels=num_labels, max_position_embeddings=64)
    if kind == "roberta":
        return RobertaForSequenceClassification(RobertaConfig(pad_token_id=1, **common)).eval()
    return BertForSequenceClassification(BertConfig(**common)).eval()


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread per test: the same numbers whatever the machine, and no oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def padded_batch():
    """Three rows of different real lengths; row 0 uses the full width."""
    torch.manual_seed(1)
    ids = torch.randint(5, 120, (3, 11))
    ids[:, 0] = 2
    lengths = torch.tensor([11, 7, 4])
    real = torch.arange(11)[None, :] < lengths[:, None]
    return ids, real, lengths


# A tiny random backbone and a complete `hash` config section, for tests that run the experiment step.
def tiny_backbone():
    from earlyexit.models.backbones import BackboneSpec

    return BackboneSpec(name="tiny-2L", source="random", num_layers=2, hidden_size=32, num_attention_heads=2,
                        intermediate_size=64)


TINY_HASH_CONFIG = {"num_buckets": 2, "balance": "types", "mi_regression_bins": 2, "cluster_n_init": 1,
                    "cluster_max_iter": 50}


def tokenized_synth_nli(root: Path, train_size: int) -> Path:
    """synth-nli (a sentence-pair task) prepared and tokenised for tiny_backbone() under `root`
    (root/tok.npz, root/tok.json); dev and test hold 12 examples each."""
    from earlyexit.data.prepare import prepare_task
    from earlyexit.runs.experiment import tokenize_task

    prepare_task("synth-nli", "synthetic", root / "data", synthetic_sizes={"train": train_size, "dev": 12, "test": 12})
    tokenize_task(task_name="synth-nli", split_dir=root / "data", backbone=tiny_backbone(), max_seq_len=32,
                  out_npz=root / "tok.npz", out_meta=root / "tok.json")
    return root


# The real-data presets (config/presets/elue-minilm*.yaml) read ../shared/data/elue; their tests skip without it.
def real_data_preset(name: str):
    """(config, its ELUE folder resolved, the marks that skip a module without that folder)."""
    import yaml

    config = yaml.safe_load((REPO / "config" / "presets" / f"{name}.yaml").read_text())
    elue = (REPO / config["data"]["data_dir"]).resolve()
    marks = [pytest.mark.realdata, pytest.mark.skipif(not elue.is_dir(), reason=f"real ELUE data not found at {elue}")]
    return config, elue, marks


def planned_outputs(config: dict, elue_dir, tmp_path) -> dict:
    """Output -> rule of a dry run of a real-data preset in an empty folder, its data folder made absolute."""
    import yaml

    from tests.test_workflow import dry_run_outputs

    path = tmp_path / "preset.yaml"
    path.write_text(yaml.safe_dump({**config, "data": {**config["data"], "data_dir": str(elue_dir)}}))
    return dry_run_outputs(path, tmp_path)
