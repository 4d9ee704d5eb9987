"""Config validation: presets are valid; bad configs give one line naming the key."""

import copy

import pytest
import yaml

from earlyexit.plumbing.config_check import config_errors
from tests.conftest import REPO

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def load(name):
    return yaml.safe_load((REPO / name).read_text())


@pytest.mark.parametrize("name", ["config/config.yaml", "config/presets/demo.yaml", "config/presets/elue-minilm.yaml",
                                  "config/presets/elue-minilm-dynamic.yaml", "config/presets/elue-minilm-main.yaml"])
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
    (lambda c: c["backbones"]["minilm-6L"].update(source="s3"), "config key 'backbones.minilm-6L.source'"),
    (lambda c: c["hash"].update(num_buckets=7), "config key 'hash.num_buckets': 7 buckets exceed the 6 layers"),
    (lambda c: (c.update(tasks=["SST-2"]), c["data"].update(source="dir")), "config key 'data.data_dir': required"),
    (lambda c: c.pop("seeds"), "'seeds' is a required property"),
    (lambda c: c.update(method_training={"distilled": {"lr": 1e-5}}), "config key 'method_training.distilled': not a method"),
    (lambda c: c.update(method_training={"theseus": {"lr": "slow"}}), "config key 'method_training.theseus.lr'"),
    (lambda c: c.update(method_training={"theseus": {"max_seq_len": 9}}), "config key 'method_training.theseus.max_seq_len': unknown key"),
    # per-task and per-method sections with a name that is not run: a typo, never silently ignored
    (lambda c: c["data"].update(subsample_per_task={"synth-sentimnet": {"train": 10}}),
     "config key 'data.subsample_per_task.synth-sentimnet': not a task (known: "),
    (lambda c: c["training"].update(max_seq_len_per_task={"SST2": 32}),
     "config key 'training.max_seq_len_per_task.SST2': not a task"),
    (lambda c: c["training"].update(epochs_per_task={"MRCP": 3}),
     "config key 'training.epochs_per_task.MRCP': not a task"),
    (lambda c: (c["methods"].pop("pabee"), c["dynamic"].update(pabee={})),
     "config key 'dynamic.pabee': method pabee is not in `methods`"),
    # summarization: a hash the encoder cannot use (a method that uses_hash); the section's methods left
    # to the schema's default (which hashes) still check the buckets against the encoder's depth
    (lambda c: c["summarization"]["methods"].update(hashee=["mi"]),
     "config key 'summarization.methods.hashee': hash 'mi' does not apply to a summarization encoder"),
    (lambda c: (c["summarization"].pop("methods"), c["summarization"]["hash"].update(num_buckets=3)),
     "config key 'summarization.hash.num_buckets': 3 buckets exceed the 2 encoder layers of summarization backbone 'tiny-bart'"),
    # issue 20: a pre-trained-here backbone names a loadable backbone of the config
    (lambda c: c["backbones"]["minilm-elastic-6L"].update(pretrained_from="minilm"),
     "config key 'backbones.minilm-elastic-6L.pretrained_from': 'minilm' is not a backbone of the config"),
    (lambda c: c["backbones"]["minilm-6L"].update(pretrained_from="minilm-6L"),
     "config key 'backbones.minilm-6L.pretrained_from': only for source 'pretrained-here'"),
    (lambda c: c["pretraining"].update(dtype="fp16"), "config key 'pretraining.dtype'"),
    # a backbone's method -> variants entry names variants the config runs
    (lambda c: c["backbones"]["minilm-elastic-6L"].update(methods={"hashee": ["rand-incons"]}),
     "config key 'backbones.minilm-elastic-6L.methods.hashee': variant 'rand-incons' is not one the config's"),
    (lambda c: c["backbones"]["minilm-elastic-6L"].update(methods={"deebert": None, "tinybert": None, "dynabert": None}),
     "config key 'backbones.minilm-elastic-6L.methods': 'dynabert' is not a key of config key 'methods'"),
])
def test_bad_config_gives_one_line_naming_the_key(mutate, expected):
    config = copy.deepcopy(load("config/presets/demo.yaml"))
    mutate(config)
    errors = config_errors(config, SCHEMA)
    assert errors and expected in errors[0]
    assert "\n" not in errors[0]


def filled(name, **changes):
    """The config as the workflow sees it: the schema's defaults filled in (Snakemake's validate)."""
    from snakemake.utils import validate

    config = copy.deepcopy(load(name))
    config.update(changes)
    validate(config, str(SCHEMA), set_default=True)
    return config


def test_each_method_trains_with_its_papers_recipe_unless_the_preset_shares_one():
    from earlyexit.methods import method_recipe

    paper = filled("config/config.yaml")
    assert paper["training_recipe"] == "per-method"
    pabee = method_recipe(paper["training"], paper["method_training"], paper["training_recipe"], "pabee")
    assert (pabee["lr"], pabee["batch_size"], pabee["epochs"], pabee["warmup_ratio"]) == (2e-5, 32, 5, 0.0)
    assert pabee["grad_clip"] == paper["training"]["grad_clip"]           # what the recipe does not name
    consistentee = method_recipe(paper["training"], paper["method_training"], "per-method", "consistentee")
    assert (consistentee["lr"], consistentee["batch_size"], consistentee["epochs"]) == (1e-5, 16, 5)
    # the full model and HashEE: the training section (HashEE's run_token.sh recipe)
    assert method_recipe(paper["training"], paper["method_training"], "per-method", "full") == paper["training"]
    # a preset's entry replaces that method's published recipe; the others keep theirs
    theseus = filled("config/config.yaml", method_training={"theseus": {"lr": 1e-4}})
    assert method_recipe(theseus["training"], theseus["method_training"], "per-method", "theseus")["epochs"] == \
        theseus["training"]["epochs"]
    assert theseus["method_training"]["deebert"]["batch_size"] == 8


def test_a_task_can_train_for_its_own_number_of_epochs_over_any_recipe():
    """training.epochs_per_task (a small task such as MRPC trains longer): that task's runs of every
    method take its epochs, the other tasks keep their recipe's; the per-task sections and what
    changes no result never reach a run's settings."""
    from earlyexit.methods import method_recipe, run_recipe, task_max_seq_len

    paper = filled("config/config.yaml")
    paper["training"]["epochs_per_task"] = {"MRPC": 9}
    args = (paper["training"], paper["method_training"], paper["training_recipe"])
    assert run_recipe(*args, "pabee", "MRPC")["epochs"] == 9          # over PABEE's own 5
    assert run_recipe(*args, "pabee", "SST-2")["epochs"] == 5
    assert run_recipe(*args, "full", "MRPC")["epochs"] == 9
    assert run_recipe(*args, "full", "SST-2")["epochs"] == paper["training"]["epochs"] != 9
    assert run_recipe(*args, "full", "IMDb")["max_seq_len"] == 512 != paper["training"]["max_seq_len"]
    # the one resolver tokenisation (workflow/rules/common.smk max_seq_len) reads too
    assert task_max_seq_len(paper["training"], "IMDb") == 512
    assert task_max_seq_len(paper["training"], "SST-2") == paper["training"]["max_seq_len"]
    settings = run_recipe(*args, "full", "SST-2")
    assert not {"epochs_per_task", "max_seq_len_per_task", "save_checkpoint", "checkpoint_every_steps"} & set(settings)
    # without the per-task sections: the method's recipe as before (finished runs keep their params)
    plain = {k: v for k, v in paper["training"].items() if k not in ("epochs_per_task", "max_seq_len_per_task",
                                                                    "save_checkpoint", "checkpoint_every_steps")}
    assert run_recipe(*args, "pabee", "SST-2") == method_recipe(plain, paper["method_training"], "per-method", "pabee")
    # a shared recipe: every method trains with the training section
    demo = filled("config/presets/demo.yaml")
    assert demo["training_recipe"] == "shared"
    assert method_recipe(demo["training"], demo["method_training"], "shared", "pabee") == demo["training"]
    with pytest.raises(ValueError, match="config key 'training_recipe'"):
        method_recipe(demo["training"], demo["method_training"], "mine", "pabee")


def test_a_backbone_entry_limits_its_methods_or_their_variants():
    from earlyexit.methods import backbone_allows

    assert backbone_allows(None, "hashee", "mi")                       # no entry: everything configured
    assert backbone_allows(["hashee"], "hashee", "mi") and not backbone_allows(["full"], "hashee", "mi")
    assert backbone_allows({"hashee": None}, "hashee", "mi")            # null: every configured variant
    assert backbone_allows({"hashee": ["frequency"]}, "hashee", "frequency")
    assert not backbone_allows({"hashee": ["frequency"]}, "hashee", "mi")
    assert not backbone_allows({"hashee": ["frequency"]}, "full", "default")
