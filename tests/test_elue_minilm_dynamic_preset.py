"""The elue-minilm-dynamic preset (docs/dynamic-real-text.md) plans every dynamic method, the full
model and HashEE on SST-2, MRPC and STS-B, each dynamic run swept once, with the dynamic table, the
curves and the inference-time figure; its subsample really cuts each split. Skipped when the
preset's data folder is absent (a checkout without ../shared)."""

import pytest

from earlyexit.data.elue import load_elue_task
from earlyexit.data.prepare import task_subsample
from earlyexit.data.tasks import get_task
from earlyexit.methods import get_method, method_variants, with_training_runs
from tests.conftest import planned_outputs, real_data_preset

CONFIG, ELUE, pytestmark = real_data_preset("elue-minilm-dynamic")


def test_dry_run_plans_every_method_sweep_and_figure(tmp_path):
    outputs = planned_outputs(CONFIG, ELUE, tmp_path)
    root = f"results/{CONFIG['preset']}"
    variants = with_training_runs(CONFIG, method_variants(CONFIG["methods"]))   # ConsistentEE: one run per alpha
    dynamic = {m for m, _ in variants if get_method(m).family == "dynamic"}
    assert dynamic == {"deebert", "fastbert", "pabee", "berxit", "consistentee", "cascadebert"}
    for task in ("SST-2", "MRPC", "STS-B"):
        for method, variant in variants:
            assert f"{root}/runs/{task}/minilm-6L/{method}/{variant}/seed1.json" in outputs
            swept = f"{root}/sweeps/{task}/minilm-6L/{method}/{variant}/seed1.json" in outputs
            assert swept == (method in dynamic), (task, method)
    for table in ("dynamic", "runs"):
        assert f"{root}/tables/{table}.csv" in outputs
    for figure in ("dynamic_curves", "inference_time"):
        assert f"figures/{CONFIG['preset']}/{figure}.png" in outputs
    assert [f for f in outputs if f.startswith(f"{root}/timing/")] == [f"{root}/timing/SST-2/minilm-6L.json"]


@pytest.mark.parametrize("task_name", ["SST-2", "MRPC", "STS-B"])
def test_subsample_cuts_every_split(task_name):
    # each cut is smaller than the split, so the record's counts are the sizes asked for
    splits = load_elue_task(ELUE, get_task(task_name))
    for split, size in task_subsample(CONFIG["data"], task_name).items():
        assert size is not None and size < len(splits[split]), (task_name, split)
