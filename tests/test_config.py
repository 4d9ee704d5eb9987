"""Config validation: presets are valid; bad configs give one line naming the key."""

import copy

import pytest
import yaml

from earlyexit.plumbing.config_check import config_errors
from tests.conftest import REPO

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def load(name):
    return yaml.safe_load((REPO / name).read_text())


@pytest.mark.parametrize("name", ["config/config.yaml", "config/presets/demo.yaml", "config/presets/elue-minilm.yaml"])
def test_shipped_presets_are_valid(name):
    assert config_errors(load(name), SCHEMA) == []


@pytest.mark.parametrize("mutate,expected", [
    (lambda c: c.update(colour="red"), "config key 'colour': unknown key"),
    (lambda c: c["training"].update(learning_rate=1e-3), "config key 'training.learning_rate': unknown key"),
    (lambda c: c["training"].update(lr="fast"), "config key 'training.lr': 'fast' is not of type 'number'"),
    (lambda c: c["tasks"].append("SST-3"), "config key 'tasks[3]': 'SST-3' is not one of"),
    (lambda c: c["methods"].update(entropy=None), "config key 'methods.entropy': unknown method (known: full, "),
    (lambda c: c["methods"].update(hashee=["md5"]), "config key 'methods.hashee': unknown variant 'md5'"),
    (lambda c: c["methods"].update(full=[]), "config key 'methods.full': [] should be non-empty"),
    (lambda c: c["backbones"]["tiny-6L"].update(source="s3"), "config key 'backbones.tiny-6L.source'"),
    (lambda c: c["hash"].update(num_buckets=7), "config key 'hash.num_buckets': 7 buckets exceed the 6 layers"),
    (lambda c: (c.update(tasks=["SST-2"]), c["data"].update(source="dir")), "config key 'data.data_dir': required"),
    (lambda c: c.pop("seeds"), "'seeds' is a required property"),
])
def test_bad_config_gives_one_line_naming_the_key(mutate, expected):
    config = copy.deepcopy(load("config/presets/demo.yaml"))
    mutate(config)
    errors = config_errors(config, SCHEMA)
    assert errors and expected in errors[0]
    assert "\n" not in errors[0]
