"""The one run-context factory (earlyexit/runs/context.py): what every step that hands a method its run
(training, the sweep, the timing) gets, resolved one way."""

import pytest
import torch

from earlyexit.dynamic.settings import method_settings, section
from earlyexit.methods import METHODS
from earlyexit.runs.context import run_context, run_settings
from tests.conftest import REPO

DYNAMIC = next(m for m in METHODS.values() if m.train_sweep)          # ConsistentEE: a training-time sweep
STATIC = next(m for m in METHODS.values() if m.reference)
REPO_FILE = REPO / "README.md"


def test_settings_default_to_the_schema_and_take_the_runs_training_value():
    defaults = method_settings(section(), DYNAMIC.name)
    assert defaults and run_settings(DYNAMIC, DYNAMIC.variants[0]) == defaults
    assert run_settings(STATIC, STATIC.variants[0]) == {}
    given = run_settings(DYNAMIC, DYNAMIC.variants[0], {"copies": 2}, {DYNAMIC.train_sweep: 0.5})
    assert given == {"copies": 2, DYNAMIC.train_sweep: 0.5}


def test_a_wrong_variant_or_training_value_is_refused_naming_it():
    with pytest.raises(ValueError, match="has no variant 'nope'"):
        run_settings(STATIC, "nope")
    with pytest.raises(ValueError, match="not its training-time sweep"):
        run_settings(DYNAMIC, DYNAMIC.variants[0], {}, {"lr": 1.0})


def test_the_context_holds_paths_as_text_and_a_device():
    ctx = run_context(STATIC, task=None, backbone=None, variant=STATIC.variants[0], seed=1, splits={}, meta={},
                      train_config=None, device="cpu", artifacts={"hash": REPO_FILE}, progress=False)
    assert ctx.artifacts == {"hash": str(REPO_FILE)} and ctx.device == torch.device("cpu")
    assert ctx.settings == {} and ctx.progress is False
