"""The elue-minilm-main preset (docs/elue_main_realtext.md) plans every row of the main table that
can run offline: every registry method whose table is the main table and that needs no hub
checkpoint, on SST-2, MRPC and STS-B, the dynamic ones swept, with the main table and the backbone
figure; the hub-only rows (DistilBERT, TinyBERT) are configured but get no run. Skipped when the
preset's data folder is absent (a checkout without ../shared)."""

from earlyexit.methods import METHODS, get_method, method_variants, with_training_runs
from tests.conftest import planned_outputs, real_data_preset

CONFIG, ELUE, pytestmark = real_data_preset("elue-minilm-main")


def test_every_offline_row_of_the_main_table_is_configured():
    main_rows = {name for name, method in METHODS.items() if "elue_main" in method.tables}
    assert main_rows <= set(CONFIG["methods"]), main_rows - set(CONFIG["methods"])


def test_dry_run_plans_every_offline_row_its_sweeps_the_table_and_the_figure(tmp_path):
    outputs = planned_outputs(CONFIG, ELUE, tmp_path)
    root = f"results/{CONFIG['preset']}"
    hub_only = set()
    assert set(CONFIG["tasks"]) >= {"SST-2", "MRPC", "STS-B"}
    for task in CONFIG["tasks"]:
        # a training-time sweep (ConsistentEE's alpha grid) plans one run per value: "<variant>@alpha=<value>"
        for method, variant in with_training_runs(CONFIG, method_variants(CONFIG["methods"])):
            spec = get_method(method)
            planned = f"{root}/runs/{task}/minilm-6L/{method}/{variant}/seed1.json" in outputs
            assert planned == (not spec.needs_hub), (task, method, variant)
            if spec.needs_hub:
                hub_only.add(method)
            swept = f"{root}/sweeps/{task}/minilm-6L/{method}/{variant}/seed1.json" in outputs
            assert swept == (spec.family == "dynamic"), (task, method)
    assert hub_only == {"distilbert", "tinybert"}
    assert f"{root}/tables/elue_main.md" in outputs
    assert f"figures/{CONFIG['preset']}/backbone_effect.png" in outputs


def test_snli_substitute_splits_name_files_that_exist():
    """SNLI is prepared on substitute splits, for a run that adds it to the tasks."""
    from earlyexit.data.elue import ELUE_SPLIT_FILES
    from earlyexit.data.prepare import task_split_files

    files = task_split_files(CONFIG["data"], "SNLI")
    assert files == {"train": "test_full.tsv", "dev": "dev.tsv", "test": "dev.tsv"}
    assert all((ELUE / "SNLI" / name).is_file() for name in files.values())
    assert all(task_split_files(CONFIG["data"], task) == ELUE_SPLIT_FILES for task in ("SST-2", "MRPC", "STS-B"))
