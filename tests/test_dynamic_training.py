"""The dynamic methods' training schemes on the one loop (earlyexit/methods/_dynamic.py): each trains a
toy task well above chance, each stage trains only its parameters, a run killed in its second stage
resumes and ends identically, and the sweep's never-exit setting is the run's own last layer."""

import dataclasses

import numpy as np
import pytest
import torch

from earlyexit.data.tasks import get_task
from earlyexit.data.encoded import EncodedSplit
from earlyexit.methods import RunContext, get_method
from earlyexit.methods._dynamic import train_stages
from earlyexit.training.state import StateFile
from earlyexit.training.loop import TrainConfig
from tests.conftest import tiny_backbone

CUE = 7


def toy_split(n, seed):
    """Label 1 iff the cue token occurs (chance 50%)."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for _ in range(n):
        body = rng.integers(10, 60, rng.integers(6, 12))
        label = int(rng.random() < 0.5)
        if label:
            body[rng.integers(len(body))] = CUE
        ids.append(np.concatenate([[2], body, [3]]))
        labels.append(label)
    return EncodedSplit(input_ids=ids, token_type_ids=None, labels=np.array(labels, dtype=np.int64))


def context(tmp_path, settings=None, state=None, epochs=3, method=None) -> RunContext:
    """`method`: fill its `dynamic.<method>` section from the schema first (as the workflow does)."""
    from earlyexit.dynamic.settings import method_settings, section

    settings = {**(method_settings(section(), method) if method else {}), **(settings or {})}
    splits = {name: toy_split(n, i) for i, (name, n) in enumerate([("train", 256), ("dev", 64), ("test", 64)])}
    cfg = TrainConfig(lr=2e-3, batch_size=16, eval_batch_size=32, epochs=epochs, evals_per_epoch=1, warmup_ratio=0.1,
                      weight_decay=0.0, grad_clip=1.0, max_seq_len=32, track_best_on_test=True, optimizer="adamw",
                      bf16=False, cpu_bf16=False, checkpoint_every_steps=5)
    return RunContext(task=get_task("SST-2"), backbone=dataclasses.replace(tiny_backbone(), num_layers=3),
                      variant="default", seed=1, splits=splits, meta={"pad_id": 0}, artifacts={}, train_config=cfg,
                      device=torch.device("cpu"), checkpoint=str(tmp_path / "model.pt"), train_state=state,
                      progress=False, settings=settings or {})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = {}
    # FastBERT's distillation rate is 10x the fine-tuning one (authors: 10 x 2e-5); on this toy's
    # 2e-3 that would be 2e-2, where the small model's distillation loss oscillates instead of falling.
    settings = {"fastbert": {"distill_lr_multiplier": 1.0}}
    for name in ("deebert", "fastbert", "pabee"):
        ctx = context(tmp_path_factory.mktemp(name), settings=settings.get(name), epochs=5, method=name)
        out[name] = (ctx, get_method(name).run(ctx))
    return out


@pytest.mark.parametrize("name", ["deebert", "fastbert", "pabee"])
def test_each_method_learns_the_toy_task_and_its_exits_learn(trained, name):
    ctx, outcome = trained[name]
    assert outcome.test["score"] > 80.0                 # the last layer, no exit; chance is 50
    assert outcome.extra["mean_exit_layer"] == 3.0      # the record is the full-depth model
    stages = [s["name"] for s in outcome.extra["stages"]]
    assert stages == {"deebert": ["final", "exits"], "fastbert": ["final", "distill"], "pabee": ["joint"]}[name]
    last_stage = [p for p in outcome.history if p["stage"] == stages[-1]]
    assert last_stage[-1]["loss"] < last_stage[0]["loss"]
    # an internal exit (trained in the last stage) answers far above chance
    assert max(last_stage[-1]["dev"]["layers"][:-1]) > 70.0
    # the record says whether the exits learned: each exit's dev score (the last one is the run's
    # own no-exit dev score) beside the train-majority class's dev score
    scores = outcome.extra["exit_dev_scores"]
    assert len(scores) == 3 and scores[-1] == pytest.approx(outcome.dev["score"])
    train, dev = ctx.splits["train"].labels, ctx.splits["dev"].labels
    majority = int(np.bincount(train).argmax())
    assert outcome.extra["majority_dev_score"] == pytest.approx(100.0 * np.mean(dev == majority))
    assert max(scores[1:]) > outcome.extra["majority_dev_score"] + 10


@pytest.mark.parametrize("name", ["deebert", "fastbert", "pabee"])
def test_never_exit_sweep_point_is_the_runs_last_layer_and_loose_ones_exit_early(trained, name):
    ctx, outcome = trained[name]
    method = get_method(name)
    never = {"deebert": {"entropy": 0.0}, "fastbert": {"speed": 0.0}, "pabee": {"patience": 0}}[name]
    loose = {"deebert": {"entropy": 0.7}, "fastbert": {"speed": 1.01}, "pabee": {"patience": 1}}[name]
    full, early = method.score_sweep(ctx, ctx.checkpoint, [never, loose])
    assert full.test == outcome.test and set(full.test_exit_layers) == {3}
    np.testing.assert_array_equal(full.test_cost.method_flops, outcome.method_flops)
    assert early.test_exit_layers.mean() < 3.0


def test_deebert_stages_train_only_their_parameters(tmp_path):
    ctx = context(tmp_path)
    method = get_method("deebert")
    model = method.build(ctx)
    stages = method.stages(model, ctx)
    highway = model.exits[0].classifier.weight.detach().clone()
    train_stages(model, stages[:1], ctx)
    torch.testing.assert_close(model.exits[0].classifier.weight, highway, rtol=0, atol=0)   # frozen in stage 1
    after_one = {k: v.clone() for k, v in model.state_dict().items()}
    train_stages(model, stages[1:], ctx)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, after_one[k])}
    assert changed and all(k.startswith(("exits.0.", "exits.1.")) for k in changed)


def test_fastbert_distillation_uses_no_labels_and_a_tenfold_rate(tmp_path):
    ctx = context(tmp_path, settings={"distill_lr_multiplier": 10.0, "distill_epochs": 2}, method="fastbert")
    method = get_method("fastbert")
    model = method.build(ctx)
    distill = method.stages(model, ctx)[1]
    assert distill.config == {"lr": pytest.approx(2e-2), "epochs": 2}
    from earlyexit.models.multi_exit import pad_batch

    ids, types, mask, labels = pad_batch(ctx.splits["train"], np.arange(8), 0)
    torch.manual_seed(0)
    a = distill.loss(model.eval(), (ids, types, mask, labels))
    b = distill.loss(model, (ids, types, mask, 1 - labels))
    assert float(a.detach()) == float(b.detach()) > 0


class Killed(BaseException):
    pass


def test_a_run_killed_in_its_second_stage_resumes_and_ends_identically(tmp_path):
    method = get_method("deebert")

    def train(ctx, kill_at=None):
        model = method.build(ctx)
        stages = method.stages(model, ctx)
        calls = {"n": 0}
        original = stages[1].loss

        def loss(m, batch):
            calls["n"] += 1
            if calls["n"] == kill_at:
                raise Killed
            return original(m, batch)

        stages[1] = dataclasses.replace(stages[1], loss=loss)
        result = train_stages(model, stages, ctx)
        return model, result, calls["n"]

    reference, expected, _ = train(context(tmp_path / "a", state=StateFile(str(tmp_path / "a.train_state.pt"))))
    state = StateFile(str(tmp_path / "b.train_state.pt"), {})
    with pytest.raises(Killed):
        train(context(tmp_path / "b", state=state), kill_at=30)          # stage 2: 48 steps, saved at 25
    assert (tmp_path / "b.exits.train_state.pt").exists() and (tmp_path / "b.final.train_state.pt").exists()
    model, result, calls = train(context(tmp_path / "b", state=state))
    assert calls == 48 - 25                                             # stage 1 done; stage 2 resumed
    assert result["history"] == expected["history"]
    ref = reference.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in model.state_dict().items())
    state.remove()
    assert not list(tmp_path.glob("b*.train_state.pt"))


def test_methods_that_cannot_do_regression_say_so():
    sts = get_task("STS-B")
    assert get_method("deebert").exit_support(sts) and get_method("fastbert").exit_support(sts)
    assert get_method("pabee").exit_support(sts) is None
    assert {tuple(s) for s in get_method("pabee").sweep_settings(sts)} == {("patience", "regression_threshold")}
    assert [s["entropy"] for s in get_method("deebert").sweep_settings(get_task("SNLI"))][-3:] == [0.8, 0.9, 1.0]
