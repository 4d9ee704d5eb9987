"""data.subsample: a seeded cut of a split before tokenisation, off by default, recorded from the
split summary through the tokenised meta into every run record."""

import copy

import pytest
import yaml

from earlyexit.data.examples import read_examples
from earlyexit.data.prepare import prepare_task, subsample_split, task_subsample
from earlyexit.data.tasks import get_task
from earlyexit.runs.experiment import run_experiment, tokenize_task
from earlyexit.plumbing.config_check import config_errors
from earlyexit.training.loop import TrainConfig
from tests.conftest import REPO, tiny_backbone

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SIZES = {"train": 60, "dev": 20, "test": 20}


def prepared(root, subsample, seed=0):
    summary = prepare_task("synth-nli", "synthetic", root, synthetic_sizes=SIZES, seed=seed, subsample=subsample)
    return summary, {s: read_examples(root / f"{s}.tsv", get_task("synth-nli")) for s in SIZES}


def test_default_keeps_every_example(tmp_path):
    summary, splits = prepared(tmp_path, None)
    assert {s: len(v) for s, v in splits.items()} == SIZES
    assert summary["subsample"] == {"sizes": {"train": None, "dev": None, "test": None}, "seed": 0,
                                    "source_counts": SIZES}


def test_cut_is_a_seeded_subset_in_file_order(tmp_path):
    _, whole = prepared(tmp_path / "whole", None)
    summary, cut = prepared(tmp_path / "cut", {"train": 25, "test": 100})
    assert summary["splits"]["train"]["count"] == 25 and summary["subsample"]["sizes"]["train"] == 25
    assert cut["test"] == whole["test"] and cut["dev"] == whole["dev"]    # larger than the split / not named: all
    positions = [whole["train"].index(e) for e in cut["train"]]
    assert positions == sorted(positions) and len(set(positions)) == 25
    _, again = prepared(tmp_path / "again", {"train": 25})
    assert again["train"] == cut["train"]
    # another seed draws another subset (of another synthetic set, so compare the helper directly)
    assert subsample_split(whole["train"], 25, 1, "train") != subsample_split(whole["train"], 25, 0, "train")


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_bad_size_names_the_key(size):
    with pytest.raises(ValueError, match=r"^config key 'data.subsample.dev': .* is not a positive integer or null$"):
        subsample_split(list(range(10)), size, 0, "dev")


def test_per_task_sizes_override_split_by_split():
    data = {"subsample": {"train": 1000, "dev": 250, "test": None},
            "subsample_per_task": {"MRPC": {"train": 400, "test": 300}}}
    assert task_subsample(data, "MRPC") == {"train": 400, "dev": 250, "test": 300}
    assert task_subsample(data, "SST-2") == {"train": 1000, "dev": 250, "test": None}
    assert task_subsample({}, "SST-2") == {"train": None, "dev": None, "test": None}


def test_schema_checks_the_key():
    config = copy.deepcopy(yaml.safe_load((REPO / "config/presets/demo.yaml").read_text()))
    assert config_errors(config, SCHEMA) == []
    config["data"]["subsample"] = {"train": 100, "test": None}
    assert config_errors(config, SCHEMA) == []
    config["data"]["subsample"] = {"train": 0}
    assert config_errors(config, SCHEMA)[0].startswith("config key 'data.subsample.train'")
    config["data"]["subsample"] = {}
    config["data"]["subsample_per_task"] = {"MRPC": {"train": 400}}
    assert config_errors(config, SCHEMA) == []
    config["data"]["subsample_per_task"] = {"MRPC": {"train": -1}}
    assert config_errors(config, SCHEMA)[0].startswith("config key 'data.subsample_per_task.MRPC.train'")
    config["data"]["subsample_per_task"] = {}
    config["data"]["subsample"] = {"validation": 10}
    assert config_errors(config, SCHEMA) == ["config key 'data.subsample.validation': unknown key (allowed: train, dev, test)"]


def test_run_record_says_what_was_cut(tmp_path):
    prepared(tmp_path / "data", {"train": 32, "dev": 12})
    meta = tokenize_task(task_name="synth-nli", split_dir=tmp_path / "data", backbone=tiny_backbone(), max_seq_len=32,
                         out_npz=tmp_path / "tok.npz", out_meta=tmp_path / "tok.json")
    # the inputs cut at max_seq_len, per split (named for what it counts, not after a method)
    from earlyexit.data.encoded import load_encoded

    encoded = load_encoded(tmp_path / "tok.npz")
    assert meta["cut_at_max_len"] == {s: int((encoded[s].lengths >= 32).sum()) for s in ("train", "dev", "test")}
    train_config = TrainConfig(lr=1e-3, batch_size=16, epochs=1, eval_batch_size=16, warmup_ratio=0.0,
                               weight_decay=0.0, grad_clip=1.0, max_seq_len=32, track_best_on_test=True,
                               optimizer="adamw", evals_per_epoch=1, bf16=False, cpu_bf16=False)
    record = run_experiment(preset="t", task_name="synth-nli", tokenized=tmp_path / "tok.npz",
                            tokenized_meta=tmp_path / "tok.json", backbone=tiny_backbone(), method="full",
                            variant="default", artifacts={}, train_config=train_config, seed=1,
                            reference_layers=12, out_json=tmp_path / "run.json", device="cpu", progress=False)
    assert record["data"]["counts"] == {"train": 32, "dev": 12, "test": 20}
    assert record["data"]["subsample"]["sizes"] == {"train": 32, "dev": 12, "test": None}
    assert record["data"]["subsample"]["source_counts"] == SIZES
