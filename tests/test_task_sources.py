"""Per-task data sources: data.sources.<task> overrides data.source, decided in one function."""

import copy

import pytest
import yaml

from earlyexit.plumbing.config_check import config_errors
from earlyexit.data.prepare import prepare_task, task_source
from tests.conftest import REPO

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def test_named_tasks_override_the_default_source():
    data = {"source": "hub", "sources": {"MRPC": "dir", "synth-nli": "synthetic"}}
    assert [task_source(data, t) for t in ("MRPC", "synth-nli", "SST-2")] == ["dir", "synthetic", "hub"]
    assert task_source({"source": "dir"}, "SST-2") == "dir"
    assert task_source({"source": "dir", "sources": None}, "SST-2") == "dir"


@pytest.mark.parametrize("data, key", [({"source": "hub", "sources": {"MRPC": "s3"}}, "data.sources.MRPC"),
                                       ({"source": "ftp"}, "data.source")])
def test_bad_source_names_the_key(data, key):
    with pytest.raises(ValueError, match=rf"^config key '{key}': '\w+' is not one of synthetic, dir, hub$"):
        task_source(data, "MRPC")


def demo_config():
    return copy.deepcopy(yaml.safe_load((REPO / "config/presets/demo.yaml").read_text()))


def test_schema_accepts_mixed_sources_and_checks_them():
    config = demo_config()
    config["tasks"] = ["synth-sentiment", "SST-2"]
    config["data"].update(sources={"SST-2": "dir"}, data_dir="elue")
    assert config_errors(config, SCHEMA) == []
    config["data"]["sources"]["SST-3"] = "dir"
    assert config_errors(config, SCHEMA)[0].startswith("config key 'data.sources': 'SST-3' is not one of")
    config["data"]["sources"] = {"SST-2": "ftp"}
    assert config_errors(config, SCHEMA)[0].startswith("config key 'data.sources.SST-2': 'ftp' is not one of")


def test_data_dir_required_when_one_task_reads_a_folder():
    config = demo_config()
    config["tasks"] = ["synth-sentiment", "SST-2"]
    config["data"]["sources"] = {"SST-2": "dir"}
    assert config_errors(config, SCHEMA) == ["config key 'data.data_dir': required when a task's source is 'dir' (SST-2)"]
    config["tasks"] = ["synth-sentiment"]       # a source for a task not run needs nothing
    assert config_errors(config, SCHEMA) == []


def test_prepare_names_the_task_when_dir_has_no_folder(tmp_path):
    with pytest.raises(ValueError, match=r"^task SST-2: source 'dir' but data.data_dir is not set$"):
        prepare_task("SST-2", "dir", tmp_path)
