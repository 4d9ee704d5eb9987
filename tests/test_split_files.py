"""Substitute split files (data.split_files): a dir-source task may read a split from another file of
its folder (SNLI offline: train on test_full.tsv, select and score on dev.tsv). The files read are
recorded in the task's summary, its tokenised meta and every run record, checked before the run with
one line naming the key, and the main table titles such a task "(substitute splits)"."""

import copy
import math

import pytest
import yaml

from analysis.elue_main import elue_main_frame, elue_main_layout
from analysis.table_writer import to_markdown
from earlyexit.data.examples import read_examples
from earlyexit.data.prepare import prepare_task, substitute_files_text, task_split_files
from earlyexit.data.tasks import get_task
from earlyexit.runs.experiment import _split_provenance
from earlyexit.plumbing.config_check import config_errors, input_errors
from tests.conftest import REPO
from tests.test_elue_main import CONFIG, runs_frame

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SNLI_OFFLINE = {"train": "test_full.tsv", "test": "dev.tsv"}


def snli_folder(root):
    """SNLI as ../shared/data/elue has it: dev and test_full, no train split."""
    folder = root / "SNLI"
    folder.mkdir(parents=True)
    header = "premise\thypothesis\tlabel\n"
    (folder / "dev.tsv").write_text(header + "A dog runs .\tAn animal moves .\t0\nA cat sleeps .\tA cat runs .\t2\n")
    (folder / "test_full.tsv").write_text(header + "Two men talk .\tPeople speak .\t0\nA kid eats .\tA kid is hungry .\t1\n"
                                          "A car stops .\tA bike goes .\t2\n")
    return root


def test_named_splits_override_the_elue_files_and_only_those():
    data = {"source": "dir", "split_files": {"SNLI": SNLI_OFFLINE}}
    assert task_split_files(data, "SNLI") == {"train": "test_full.tsv", "dev": "dev.tsv", "test": "dev.tsv"}
    assert task_split_files(data, "MRPC") == {"train": "train.tsv", "dev": "dev.tsv", "test": "test_full.tsv"}
    assert substitute_files_text(task_split_files(data, "SNLI")) == "train test_full.tsv, dev dev.tsv, test dev.tsv"
    assert substitute_files_text(task_split_files(data, "MRPC")) == ""
    assert substitute_files_text(None) == ""       # hub and synthetic tasks read no files: nothing to label


def test_prepare_reads_the_named_files_and_records_them(tmp_path):
    root = snli_folder(tmp_path / "elue")
    files = task_split_files({"split_files": {"SNLI": SNLI_OFFLINE}}, "SNLI")
    out = tmp_path / "prepared"
    summary = prepare_task("SNLI", "dir", out, data_dir=root, split_files=files, subsample={"dev": 1})
    assert summary["files"] == files and summary["subsample"]["source_counts"] == {"train": 3, "dev": 2, "test": 2}
    task = get_task("SNLI")
    assert [e.text_a for e in read_examples(out / "train.tsv", task)] == ["Two men talk .", "A kid eats .", "A car stops ."]
    # dev and test read dev.tsv: they hold disjoint parts of it, so nothing selected on is scored
    dev = [e.text_a for e in read_examples(out / "dev.tsv", task)]
    test = [e.text_a for e in read_examples(out / "test.tsv", task)]
    assert len(dev) == 1 and sorted(dev + test) == ["A cat sleeps .", "A dog runs ."]
    assert summary["partitioned"] == {"dev.tsv": {"dev": 1, "test": 1}}
    assert _split_provenance(out)["files"] == files          # what tokenize_task passes to every run record


def test_splits_sharing_a_file_are_disjoint_and_seeded(tmp_path):
    from earlyexit.data.examples import Example
    from earlyexit.data.prepare import partition_shared_files

    pool = [Example(f"s{i}", "h", i % 3) for i in range(20)]
    splits = {"train": pool[:5], "dev": pool, "test": pool}
    files = {"train": "a.tsv", "dev": "b.tsv", "test": "b.tsv"}
    out, parts = partition_shared_files("SNLI", splits, files, {"dev": 6}, seed=3)
    assert len(out["dev"]) == 6 and len(out["test"]) == 14 and not set(out["dev"]) & set(out["test"])
    assert set(out["dev"]) | set(out["test"]) == set(pool) and out["train"] == pool[:5]
    assert partition_shared_files("SNLI", splits, files, {"dev": 6}, seed=3)[0] == out
    assert partition_shared_files("SNLI", splits, files, {"dev": 6}, seed=4)[0]["dev"] != out["dev"]
    with pytest.raises(ValueError, match=r"config key 'data.split_files.SNLI': splits dev, test all read b.tsv"):
        partition_shared_files("SNLI", splits, files, {}, seed=3)


def test_a_shared_file_without_a_selection_size_is_a_config_error(tmp_path):
    config = demo_config(snli_folder(tmp_path / "elue"))
    del config["data"]["subsample_per_task"]
    assert config_errors(config, SCHEMA) == [
        "config key 'data.split_files.SNLI': splits dev, test all read dev.tsv; give all but one of them a size in "
        "data.subsample_per_task.SNLI so they get disjoint parts"]


def test_without_substitutes_a_missing_split_says_which_key_fixes_it(tmp_path):
    root = snli_folder(tmp_path / "elue")
    with pytest.raises(Exception, match=r"train.tsv: no such file; .*data.split_files.SNLI"):
        prepare_task("SNLI", "dir", tmp_path / "out", data_dir=root)


def demo_config(root):
    config = copy.deepcopy(yaml.safe_load((REPO / "config" / "presets" / "demo.yaml").read_text()))
    config["data"] = {"source": "dir", "data_dir": str(root), "split_files": {"SNLI": dict(SNLI_OFFLINE)},
                      "subsample_per_task": {"SNLI": {"dev": 1}}}
    config["tasks"] = ["SNLI"]
    return config


def test_config_checks_the_named_files(tmp_path):
    root = snli_folder(tmp_path / "elue")
    config = demo_config(root)
    assert config_errors(config, SCHEMA) == [] and input_errors(config) == []
    config["data"]["split_files"]["SNLI"]["train"] = "train_small.tsv"
    assert input_errors(config) == [
        f"config key 'data.split_files.SNLI.train': {root / 'SNLI' / 'train_small.tsv'} does not exist "
        f"(task SNLI reads train_small.tsv, dev.tsv, dev.tsv there; or set data.sources.SNLI: hub)"]
    config["data"]["split_files"]["SNLI"]["train"] = "../MRPC/train.tsv"      # a file of the task's folder only
    assert config_errors(config, SCHEMA)[0].startswith("config key 'data.split_files.SNLI.train'")
    config["data"]["split_files"] = {"SNLI": {"valid": "dev.tsv"}}
    assert config_errors(config, SCHEMA) == ["config key 'data.split_files.SNLI.valid': unknown key (allowed: train, dev, test)"]


def test_runs_table_and_main_table_label_a_substituted_task(tmp_path):
    """The label follows what the runs read (their records' data.files), through runs.csv."""
    from analysis.collect import read_run, read_runs_csv, write_runs_csv
    from analysis.published import load_published

    runs = runs_frame()
    mrpc = runs["task"] == "MRPC"
    runs.loc[mrpc, "split_files"] = substitute_files_text({"train": "test_full.tsv", "dev": "dev.tsv", "test": "dev.tsv"})
    write_runs_csv(runs, tmp_path / "runs.csv")
    table = elue_main_frame(read_runs_csv(tmp_path / "runs.csv"), load_published(), "t", CONFIG)
    by_task = table.drop_duplicates("task").set_index("task")["substitute_splits"]
    assert by_task["MRPC"] == "train test_full.tsv, dev dev.tsv, test dev.tsv" and by_task["SST-2"] == ""
    md = to_markdown(elue_main_layout(table, "t"))
    header = next(line for line in md.splitlines() if line.startswith("| Model"))
    assert "MRPC (substitute splits)" in header and "SST-2 (substitute splits)" not in header
    assert "MRPC (substitute splits) is not the ELUE protocol: its split files are train test_full.tsv" in md
    # the numbers themselves do not change: the label is all
    plain = elue_main_frame(runs_frame(), load_published(), "t", CONFIG)
    assert all(math.isclose(a, b) or (math.isnan(a) and math.isnan(b))
               for a, b in zip(table["test_mean"], plain["test_mean"]))
    assert set(plain["substitute_splits"]) == {""}
