"""BERxiT and ConsistentEE on the dynamic methods' toy task (tests/test_dynamic_training.py): each learns
it, a run killed in its last stage resumes and ends identically (ConsistentEE's memorized layers are
recomputed from the stage-1 weights on resume; BERxiT's step parity comes from the batch plan), and
the sweep scores its learned exit rule."""

import dataclasses

import pytest
import torch

from earlyexit.methods import get_method
from earlyexit.methods._dynamic import train_stages
from earlyexit.training.state import StateFile
from tests.test_dynamic_training import context

SMALL_RL = {"copies": 2, "rl_batch_size": 16, "rl_epochs": 1, "rl_lr": 3e-3, "joint_batch_size": 16,
            "joint_lr": 3e-4, "alpha": 0.05}


class Killed(BaseException):
    pass


def train(method, ctx, kill_at=None):
    """Train every stage; with `kill_at`, the last stage's loss raises at that call."""
    model = method.build(ctx)
    stages = method.stages(model, ctx)
    calls = {"n": 0}
    original = stages[-1].loss

    def loss(*args):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise Killed
        return original(*args)

    stages[-1] = dataclasses.replace(stages[-1], loss=loss)
    return model, train_stages(model, stages, ctx), calls["n"]


@pytest.mark.parametrize("name, settings, epochs, last_steps", [("berxit", {}, 2, 32),
                                                                 ("consistentee", SMALL_RL, 2, 16)])   # joint: 1 epoch (schema)
def test_a_run_killed_in_its_last_stage_resumes_and_ends_identically(tmp_path, name, settings, epochs, last_steps):
    method = get_method(name)
    reference, expected, _ = train(method, context(tmp_path / "a", settings, StateFile(str(tmp_path / "a.train_state.pt")),
                                                   epochs=epochs))
    state = StateFile(str(tmp_path / "b.train_state.pt"), {})
    with pytest.raises(Killed):
        train(method, context(tmp_path / "b", settings, state, epochs=epochs), kill_at=8)    # saved at step 5
    model, result, calls = train(method, context(tmp_path / "b", settings, state, epochs=epochs))
    assert calls == last_steps - 5
    assert result["history"] == expected["history"]
    ref = reference.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name, settings", [("berxit", {}), ("consistentee", SMALL_RL)])
def test_learns_the_toy_task_and_the_sweep_scores_its_learned_rule(tmp_path, name, settings):
    method = get_method(name)
    ctx = context(tmp_path, settings, epochs=5)
    outcome = method.run(ctx)
    assert outcome.test["score"] > 80 and outcome.extra["mean_exit_layer"] == 3     # the run: no exit
    points = method.score_sweep(ctx, ctx.checkpoint, method.sweep_settings(ctx.task))
    assert len(points) == len(method.sweep_settings(ctx.task))
    for point in points:
        assert set(point.test_exit_layers.tolist()) <= {1, 2, 3} and point.test["score"] > 60
    if name == "berxit":     # a loose threshold exits earlier than a tight one
        assert points[-1].test_exit_layers.mean() <= points[0].test_exit_layers.mean()
