"""Resumable training: a run killed after k steps and rerun continues from its saved state and ends
bit-for-bit where an uninterrupted run ends (metrics, history, parameters), on the bare loop and
through the experiment step; the state goes once the record is written; a state written for other
settings is not resumed."""

import logging

import pytest
import torch

from earlyexit.training import fine_tuning
from earlyexit.runs.experiment import run_experiment, train_state_path
from earlyexit.hashing.artifacts import fit_hash_artifact
from earlyexit.plumbing.files import read_json
from earlyexit.training.state import StateFile
from earlyexit.training.loop import TrainConfig, TrainHooks, train_loop
from tests.conftest import TINY_HASH_CONFIG, tiny_backbone, tokenized_synth_nli


class Killed(BaseException):
    """Stands for a kill or timeout: not an Exception, so nothing on the way catches it."""


def config(**given) -> TrainConfig:
    settings = dict(lr=1e-2, batch_size=4, eval_batch_size=8, epochs=2, evals_per_epoch=3, warmup_ratio=0.2,
                    weight_decay=0.01, grad_clip=1.0, max_seq_len=8, track_best_on_test=False, optimizer="adamw",
                    bf16=False, cpu_bf16=False, checkpoint_every_steps=4)
    return TrainConfig(**{**settings, **given})


# --- the bare loop: a tiny regressor with dropout (the hooks draw from torch's RNG) ----------------

class Toy:
    """40 training rows in 10 batches per epoch, 8 held out; `kill_at`: the loss call that is killed (1-based)."""

    def __init__(self, kill_at=None):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(48, 4, generator=generator)
        self.y = torch.sin(self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]))
        torch.manual_seed(123)           # the same initial weights in every run
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                         torch.nn.Linear(16, 1))
        self.kill_at, self.calls = kill_at, 0

    def epoch_batches(self, rng):
        order = rng.permutation(40)
        return [order[i:i + 4] for i in range(0, 40, 4)]

    def loss(self, index):
        self.calls += 1
        if self.calls == self.kill_at:
            raise Killed
        return torch.nn.functional.mse_loss(self.model(self.x[index]).squeeze(-1), self.y[index])

    def evaluate(self):
        held_out = torch.nn.functional.mse_loss(self.model(self.x[40:]).squeeze(-1), self.y[40:])
        return {"select": -float(held_out)}

    def train(self, cfg=None, state=None):
        hooks = TrainHooks(epoch_batches=self.epoch_batches, loss=self.loss, evaluate=self.evaluate)
        return train_loop(self.model, hooks, cfg or config(), seed=7, progress=False, state=state)


def same_end(a: Toy, result_a: dict, b: Toy, result_b: dict) -> None:
    assert result_b["history"] == result_a["history"] and result_b["selected"] == result_a["selected"]
    assert result_b["steps"] == result_a["steps"] == 20
    params_a, params_b = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(params_a[k], params_b[k]) for k in params_a)


@pytest.fixture(scope="module")
def uninterrupted():
    toy = Toy()
    return toy, toy.train()


# Evaluation points at steps 3, 7, 10, 13, 17, 20; periodic states at 4, 8, 12, 16, 20.
@pytest.mark.parametrize("killed_in, saved_at", [(6, 4), (10, 8), (14, 13)])
def test_killed_run_resumes_from_its_last_state_and_ends_identically(tmp_path, uninterrupted, killed_in, saved_at):
    state = StateFile(str(tmp_path / "run.train_state.pt"), {"method": "toy"})
    with pytest.raises(Killed):
        Toy(kill_at=killed_in).train(state=state)
    assert (tmp_path / "run.train_state.pt").exists()
    rerun = Toy()
    result = rerun.train(state=state)
    assert rerun.calls == 20 - saved_at          # it resumed: only the steps after the state ran again
    same_end(*uninterrupted, rerun, result)


def test_killed_twice_still_ends_identically(tmp_path, uninterrupted):
    state = StateFile(str(tmp_path / "state.pt"))
    with pytest.raises(Killed):
        Toy(kill_at=6).train(state=state)               # saved at step 4
    with pytest.raises(Killed):
        Toy(kill_at=8).train(state=state)               # steps 5..11 ran, last saved at 10
    rerun = Toy()
    result = rerun.train(state=state)
    assert rerun.calls == 10
    same_end(*uninterrupted, rerun, result)


def test_a_finished_state_trains_nothing_more(tmp_path, uninterrupted):
    state = StateFile(str(tmp_path / "state.pt"))
    Toy().train(state=state)                            # killed after training, before its record
    rerun = Toy(kill_at=1)                              # any training step would be killed
    same_end(*uninterrupted, rerun, rerun.train(state=state))


def test_the_checkpoint_interval_changes_no_result(tmp_path, uninterrupted):
    state = StateFile(str(tmp_path / "state.pt"))
    with pytest.raises(Killed):
        Toy(kill_at=6).train(config(checkpoint_every_steps=1), state=state)   # saved at step 5
    rerun = Toy()
    result = rerun.train(config(checkpoint_every_steps=0), state=state)     # still resumed
    assert rerun.calls == 15
    same_end(*uninterrupted, rerun, result)


class Scheduled(Toy):
    """A Toy whose dropout rate follows the step through the loop's before_step hook (as BERT-of-
    Theseus' replacement rate does); it records the steps it was told."""

    def __init__(self, kill_at=None):
        super().__init__(kill_at)
        self.told = []

    def before_step(self, step):
        self.told.append(step)
        self.model[2].p = 0.05 + 0.02 * step

    def train(self, cfg=None, state=None):
        hooks = TrainHooks(epoch_batches=self.epoch_batches, loss=self.loss, evaluate=self.evaluate,
                           before_step=self.before_step)
        return train_loop(self.model, hooks, cfg or config(), seed=7, progress=False, state=state)


def test_before_step_is_told_each_step_and_a_resume_continues_the_schedule(tmp_path):
    plain = Scheduled()
    result = plain.train()
    assert plain.told == list(range(20))
    assert result["history"] != Toy().train()["history"]          # the schedule did change training
    state = StateFile(str(tmp_path / "state.pt"))
    with pytest.raises(Killed):
        Scheduled(kill_at=10).train(state=state)                  # saved at step 8
    rerun = Scheduled()
    resumed = rerun.train(state=state)
    assert rerun.told == list(range(8, 20))
    same_end(plain, result, rerun, resumed)


@pytest.mark.parametrize("changed, differs", [
    ({"cfg": config(lr=2e-2)}, "training.lr"),
    ({"cfg": config(warmup_ratio=0.0)}, "training.warmup_ratio"),
    ({"identity": {"method": "other"}}, "run.method"),
])
def test_a_state_for_other_settings_is_not_resumed(tmp_path, caplog, changed, differs):
    path = str(tmp_path / "state.pt")
    with pytest.raises(Killed):
        Toy(kill_at=14).train(state=StateFile(path, {"method": "toy"}))
    cfg = changed.get("cfg", config())
    fresh = Toy()
    expected = fresh.train(cfg)
    rerun = Toy()
    with caplog.at_level(logging.WARNING, logger="earlyexit.training.loop"):
        result = rerun.train(cfg, state=StateFile(path, changed.get("identity", {"method": "toy"})))
    messages = [r.getMessage() for r in caplog.records if "not resumed" in r.getMessage()]
    assert len(messages) == 1 and f"({differs} differs)" in messages[0] and path in messages[0]
    assert rerun.calls == 20                           # trained from step 0
    same_end(fresh, expected, rerun, result)


def test_an_unreadable_state_is_not_resumed(tmp_path, caplog, uninterrupted):
    path = tmp_path / "state.pt"
    path.write_bytes(b"not a torch file")
    rerun = Toy()
    with caplog.at_level(logging.WARNING, logger="earlyexit.training.loop"):
        result = rerun.train(state=StateFile(str(path)))
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert rerun.calls == 20
    same_end(*uninterrupted, rerun, result)


# --- through the experiment step: a tiny random backbone, every method that trains ------------------

BACKBONE = tiny_backbone()
# 64 training examples in batches of 16: 4 steps per epoch; evaluations at 2, 4, 6, 8, states also at 3.
EIGHT_STEPS = TrainConfig(lr=1e-3, batch_size=16, epochs=2, eval_batch_size=16, warmup_ratio=0.25, weight_decay=0.0,
                          grad_clip=1.0, max_seq_len=32, track_best_on_test=True, optimizer="adamw",
                          evals_per_epoch=2, bf16=False, cpu_bf16=False, checkpoint_every_steps=3)
TIMINGS = ("train_seconds", "eval_seconds", "total_seconds")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tokenized_synth_nli(tmp_path_factory.mktemp("resume"), train_size=64)
    fit_hash_artifact(tokenized=root / "tok.npz", meta=read_json(root / "tok.json"), backbone=BACKBONE,
                      hash_name="frequency", hash_config=TINY_HASH_CONFIG, seed=1,
                      out_npz=root / "frequency.npz", out_summary=root / "frequency.json")
    return root


class CountingLoss:
    """Wraps fine-tuning's loss: counts training steps and kills the `kill_at`-th."""

    def __init__(self, kill_at=None):
        self.kill_at, self.calls = kill_at, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.kill_at:
            raise Killed
        return LOSS(*args, **kwargs)


LOSS = fine_tuning.classification_loss


def experiment(inputs, out, method, train_config=EIGHT_STEPS):
    artifacts = {"hash": inputs / "frequency.npz"} if method == "hashee" else {}
    return run_experiment(preset="resume", task_name="synth-nli", tokenized=inputs / "tok.npz",
                          tokenized_meta=inputs / "tok.json", backbone=BACKBONE, method=method,
                          variant="frequency" if method == "hashee" else "default", artifacts=artifacts,
                          train_config=train_config, seed=1, reference_layers=12, out_json=out,
                          checkpoint=out.with_suffix(".ckpt"), device="cpu", progress=False)


def without_timings(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMINGS}


@pytest.mark.parametrize("method", ["full", "hashee"])
def test_experiment_killed_and_rerun_writes_the_uninterrupted_record(inputs, monkeypatch, method):
    whole = experiment(inputs, inputs / f"whole/{method}.json", method)

    out = inputs / f"killed/{method}.json"
    monkeypatch.setattr(fine_tuning, "classification_loss", CountingLoss(kill_at=4))
    with pytest.raises(Killed):
        experiment(inputs, out, method)
    assert train_state_path(out).exists() and not out.exists()

    rerun = CountingLoss()
    monkeypatch.setattr(fine_tuning, "classification_loss", rerun)
    resumed = experiment(inputs, out, method)
    assert rerun.calls == 5                              # resumed at step 3 of 8
    assert without_timings(resumed) == without_timings(whole) == without_timings(read_json(out))
    assert len(resumed["history"]) == 4 and resumed["history"][-1]["step"] == 8
    weights_whole, weights_resumed = (torch.load(p.with_suffix(".ckpt")) for p in (inputs / f"whole/{method}.json", out))
    assert all(torch.equal(weights_whole[k], weights_resumed[k]) for k in weights_whole)
    assert not train_state_path(out).exists()            # the record holds the results now
    assert not train_state_path(inputs / f"whole/{method}.json").exists()


def test_experiment_does_not_resume_a_state_of_other_settings(inputs, monkeypatch, caplog):
    out = inputs / "changed/full.json"
    monkeypatch.setattr(fine_tuning, "classification_loss", CountingLoss(kill_at=6))
    with pytest.raises(Killed):
        experiment(inputs, out, "full")
    rerun = CountingLoss()
    monkeypatch.setattr(fine_tuning, "classification_loss", rerun)
    changed = TrainConfig(**{**EIGHT_STEPS.as_dict(), "lr": 2e-3})
    with caplog.at_level(logging.WARNING, logger="earlyexit.training.loop"):
        experiment(inputs, out, "full", changed)
    assert rerun.calls == 8
    assert any("(training.lr differs), not resumed" in r.getMessage() for r in caplog.records)
    assert not train_state_path(out).exists()


# --- a grouped job (several runs in one job) killed after k finished runs ---------------------------

def grouped_job(inputs, folder, seeds=(1, 2, 3)):
    """What train_eval.py does for one grouped job: its runs in order, each kept once finished, and the
    kept states discarded once every run is done."""
    from earlyexit.runs.completed import discard

    records = []
    for seed in seeds:
        out = folder / f"seed{seed}.json"
        records.append(run_experiment(
            preset="resume", task_name="synth-nli", tokenized=inputs / "tok.npz", tokenized_meta=inputs / "tok.json",
            backbone=BACKBONE, method="full", variant="default", artifacts={}, train_config=EIGHT_STEPS, seed=seed,
            reference_layers=12, out_json=out, checkpoint=out.with_suffix(".ckpt"), device="cpu", progress=False,
            keep_completed=True))
    for seed in seeds:
        discard(folder / f"seed{seed}.json")
    return records


def test_a_killed_grouped_job_keeps_its_finished_runs(inputs, monkeypatch):
    """Killed in its third run after two finished: Snakemake deletes every output of the failed job; the
    rerun restores the two finished runs (no training step), resumes the third from its state, and
    writes what an uninterrupted job writes."""
    whole = grouped_job(inputs, inputs / "group-whole")
    folder = inputs / "group-killed"
    monkeypatch.setattr(fine_tuning, "classification_loss", CountingLoss(kill_at=8 + 8 + 4))
    with pytest.raises(Killed):
        grouped_job(inputs, folder)
    for path in [*folder.glob("seed*.json"), *folder.glob("seed*.ckpt")]:
        if ".completed" not in path.name:
            path.unlink()                     # what Snakemake does to a failed job's outputs
    rerun = CountingLoss()
    monkeypatch.setattr(fine_tuning, "classification_loss", rerun)
    resumed = grouped_job(inputs, folder)
    assert rerun.calls == 5                   # runs 1-2 restored (0 steps), run 3 resumed at step 3 of 8
    assert [without_timings(r) for r in resumed] == [without_timings(r) for r in whole]
    for seed in (1, 2, 3):
        a, b = (torch.load(f / f"seed{seed}.ckpt") for f in (inputs / "group-whole", folder))
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not list(folder.glob("*.completed.*")) and not list(folder.glob("*.train_state.pt"))


def test_a_completed_state_of_other_settings_is_not_restored(inputs, monkeypatch):
    from earlyexit.runs import completed as completed_runs
    out = inputs / "stale/seed1.json"
    experiment_args = dict(preset="resume", task_name="synth-nli", tokenized=inputs / "tok.npz",
                           tokenized_meta=inputs / "tok.json", backbone=BACKBONE, method="full", variant="default",
                           artifacts={}, seed=1, reference_layers=12, out_json=out, checkpoint=out.with_suffix(".ckpt"),
                           device="cpu", progress=False, keep_completed=True)
    run_experiment(train_config=EIGHT_STEPS, **experiment_args)
    assert out.with_name("seed1.completed.json").exists() and out.with_name("seed1.completed.pt").exists()
    rerun = CountingLoss()
    monkeypatch.setattr(fine_tuning, "classification_loss", rerun)
    run_experiment(train_config=TrainConfig(**{**EIGHT_STEPS.as_dict(), "lr": 2e-3}), **experiment_args)
    assert rerun.calls == 8                   # other settings: trained, not restored
    completed_runs.discard(out)
    assert not list(out.parent.glob("*.completed.*"))


def test_a_second_writer_of_a_run_stops_naming_the_run_and_the_holder(inputs):
    """A job's child outliving a killed Snakemake holds its runs' locks; a second writer stops at once."""
    import os

    from earlyexit.plumbing.run_lock import lock_path, run_lock

    out = inputs / "locked/seed1.json"
    with run_lock(out):
        with pytest.raises(RuntimeError, match=rf"^run {out} is being written by another process \(PID {os.getpid()}, "):
            run_experiment(preset="resume", task_name="synth-nli", tokenized=inputs / "tok.npz",
                           tokenized_meta=inputs / "tok.json", backbone=BACKBONE, method="full", variant="default",
                           artifacts={}, train_config=EIGHT_STEPS, seed=1, reference_layers=12, out_json=out,
                           device="cpu", progress=False)
        assert not out.exists() and not train_state_path(out).exists()
    with run_lock(out):                       # released with its holder
        assert lock_path(out).read_text().strip() == str(os.getpid())


class TwoOptimizers(Toy):
    """A Toy whose output layer is stepped by a second optimizer (momentum SGD: it has state to resume),
    as a method with learned loss weights would (TrainHooks.extra_optimizers)."""

    def train(self, cfg=None, state=None):
        second = lambda: [torch.optim.SGD(self.model[3].parameters(), lr=0.05, momentum=0.9)]  # noqa: E731
        hooks = TrainHooks(epoch_batches=self.epoch_batches, loss=self.loss, evaluate=self.evaluate,
                           extra_optimizers=second)
        return train_loop(self.model, hooks, cfg or config(), seed=7, progress=False, state=state)


def test_a_second_optimizer_is_resumed_with_its_state(tmp_path):
    plain = TwoOptimizers()
    result = plain.train()
    assert result["history"] != Toy().train()["history"]          # the second optimizer did its own steps
    state = StateFile(str(tmp_path / "state.pt"))
    with pytest.raises(Killed):
        TwoOptimizers(kill_at=10).train(state=state)              # saved at step 8
    rerun = TwoOptimizers()
    same_end(plain, result, rerun, rerun.train(state=state))
