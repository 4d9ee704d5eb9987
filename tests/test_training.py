"""The one training loop: its contract on a tiny model with hooks (evaluation points, selection and
restoration, determinism, strict settings), and fine-tuning on it learns classification with and
without a hash, and STS-B-style regression."""

import numpy as np
import pytest
import torch

from earlyexit.data.batching import attach_exit_layers
from earlyexit.data.encoded import EncodedSplit
from earlyexit.training.fine_tuning import fine_tune, predict
from earlyexit.hashing.functions import frequency_hash
from earlyexit.models.hashee import HashEEForSequenceClassification
from earlyexit.plumbing.torch_setup import linear_warmup_decay
from earlyexit.training.loop import TrainConfig, TrainHooks, train_loop
from tests.conftest import tiny_classifier

LAYERS = 3
CUE = 7  # the token the toy tasks are about


def config(**given) -> TrainConfig:
    settings = dict(lr=2e-3, batch_size=16, eval_batch_size=32, epochs=3, evals_per_epoch=2, warmup_ratio=0.1,
                    weight_decay=0.0, grad_clip=1.0, max_seq_len=64, track_best_on_test=True, optimizer="adamw", bf16=False, cpu_bf16=False)
    return TrainConfig(**{**settings, **given})


# --- train_loop on a tiny model with hooks ---------------------------------------------------------

class Recorder:
    """Hooks for a linear regressor whose evaluation returns a scripted "select" score and keeps a
    copy of the parameters at every evaluation point."""

    def __init__(self, model, n_rows: int, batch_size: int, scores):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(n_rows, 4, generator=generator)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
        self.model, self.batch_size, self.scores = model, batch_size, list(scores)
        self.snapshots, self.modes = [], []

    def epoch_batches(self, rng):
        order = rng.permutation(len(self.x))
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def loss(self, index):
        return torch.nn.functional.mse_loss(self.model(self.x[index]).squeeze(-1), self.y[index])

    def evaluate(self):
        self.modes.append((self.model.training, torch.is_grad_enabled()))
        self.snapshots.append({k: v.clone() for k, v in self.model.state_dict().items()})
        return {"select": self.scores[len(self.snapshots) - 1]}

    def hooks(self):
        return TrainHooks(epoch_batches=self.epoch_batches, loss=self.loss, evaluate=self.evaluate)


def run_loop(scores, seed=0, **given):
    torch.manual_seed(123)  # the same initial weights whatever the loop's seed
    model = torch.nn.Linear(4, 1)
    recorder = Recorder(model, n_rows=40, batch_size=4, scores=scores)   # 10 batches per epoch
    cfg = config(lr=1e-2, batch_size=4, warmup_ratio=0.0, **given)
    return model, recorder, train_loop(model, recorder.hooks(), cfg, seed, progress=False)


def test_loop_evaluates_at_the_stated_steps_in_eval_mode_without_gradients():
    _, recorder, result = run_loop(scores=[0.0] * 6, epochs=2, evals_per_epoch=3)
    # evals_per_epoch evenly spaced points per epoch, the last at the epoch's end: 10 batches / 3.
    assert [(p["epoch"], p["step"]) for p in result["history"]] == [(1, 3), (1, 7), (1, 10), (2, 13), (2, 17), (2, 20)]
    assert result["steps"] == 20 and len(recorder.snapshots) == 6
    assert recorder.modes == [(False, False)] * 6
    assert all(np.isfinite(p["loss"]) and p["loss"] > 0 for p in result["history"])


def test_loop_restores_the_state_of_the_best_select_point():
    scores = [0.1, 0.9, 0.3, 0.5]                       # the second point is the best
    model, recorder, result = run_loop(scores=scores, epochs=2, evals_per_epoch=2)
    assert result["selected"]["step"] == 10 and result["selected"]["select"] == 0.9
    restored = model.state_dict()
    best, last = recorder.snapshots[1], recorder.snapshots[-1]
    assert all(torch.equal(restored[k], best[k]) for k in best)
    assert not all(torch.equal(best[k], last[k]) for k in best)  # training did move on after it
    assert not model.training


def test_loop_same_seed_same_history_other_seed_other_batches():
    scores = [0.2, 0.4, 0.1, 0.3]
    model_a, rec_a, a = run_loop(scores=scores, seed=3, epochs=2)
    model_b, rec_b, b = run_loop(scores=scores, seed=3, epochs=2)
    _, _, c = run_loop(scores=scores, seed=4, epochs=2)
    assert a["history"] == b["history"] and a["selected"] == b["selected"]
    assert all(torch.equal(model_a.state_dict()[k], model_b.state_dict()[k]) for k in model_a.state_dict())
    assert [p["loss"] for p in a["history"]] != [p["loss"] for p in c["history"]]  # the seed orders batches


def _loop_with(**hooks):
    torch.manual_seed(123)
    model = torch.nn.Linear(4, 1)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    recorder = Recorder(model, n_rows=40, batch_size=4, scores=[0.1, 0.2, 0.3, 0.4])    # the last point wins
    made = {name: make(model) for name, make in hooks.items()}
    train_loop(model, TrainHooks(recorder.epoch_batches, recorder.loss, recorder.evaluate, **made),
               config(lr=1e-2, batch_size=4, warmup_ratio=0.0, epochs=2), 0, progress=False)
    return start, model.state_dict()


def test_param_groups_give_parameters_their_own_rate():
    """A method's extra parameter group (e.g. learned loss weights) trains at its own rate: 0 here."""
    def groups(model):
        return lambda params: [{"params": [model.weight]}, {"params": [model.bias], "lr": 0.0}]

    start, end = _loop_with(param_groups=groups)
    assert torch.equal(start["bias"], end["bias"]) and not torch.equal(start["weight"], end["weight"])
    with pytest.raises(ValueError, match="exactly once"):
        _loop_with(param_groups=lambda model: lambda params: [{"params": [model.weight]}])


@pytest.mark.parametrize("rate", [0.0, 0.1])
def test_an_extra_optimizer_alone_steps_its_parameters(rate):
    """A second optimizer (LeeBERT-style) owns its parameters: the loop's own optimizer leaves them out."""
    start, end = _loop_with(extra_optimizers=lambda model: lambda: [torch.optim.SGD([model.bias], lr=rate)])
    assert torch.equal(start["bias"], end["bias"]) == (rate == 0.0)
    assert not torch.equal(start["weight"], end["weight"])


def test_train_config_rejects_unknown_and_missing_keys_naming_them():
    settings = config().as_dict()
    assert TrainConfig.from_config(settings) == config()
    with pytest.raises(ValueError, match=r"config key 'training\.learning_rate': unknown training setting"):
        TrainConfig.from_config({**settings, "learning_rate": 1e-3})
    without_lr = {k: v for k, v in settings.items() if k != "lr"}
    with pytest.raises(ValueError, match=r"config key 'training\.lr': required training setting is missing"):
        TrainConfig.from_config(without_lr)
    with pytest.raises(ValueError, match=r"config key 'difficulty\.token\.annotator\.grad_clip': required"):
        TrainConfig.from_config({k: v for k, v in settings.items() if k != "grad_clip"}, "difficulty.token.annotator")


# --- fine-tuning on the loop -------------------------------------------------------------------------

def toy_split(n, seed, regression=False):
    """Classification: label 1 iff the cue token occurs. Regression (STS-B-like, 0-5): the label is
    the number of cue tokens, 0 to 5."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for _ in range(n):
        body = rng.integers(10, 60, rng.integers(6, 12))
        count = int(rng.integers(0, 6)) if regression else int(rng.random() < 0.5)
        body[rng.choice(len(body), count, replace=False)] = CUE
        ids.append(np.concatenate([[2], body, [3]]))
        labels.append(float(count) if regression else count)
    return EncodedSplit(input_ids=ids, token_type_ids=None, labels=np.array(labels))


def run(seed, token_hash=None, epochs=3, regression=False, keep=None):
    """fine_tune on the toy task; `keep` (a dict) receives the trained model and the test split."""
    splits = {name: toy_split(n, i, regression) for i, (name, n) in enumerate([("train", 256), ("dev", 64), ("test", 64)])}
    for i, split in enumerate(splits.values()):
        attach_exit_layers(split, token_hash, LAYERS, np.random.default_rng([seed, i]))
    model = HashEEForSequenceClassification(tiny_classifier("bert", LAYERS, num_labels=1 if regression else 2, seed=seed))
    if keep is not None:
        keep.update(model=model, test=splits["test"])
    return fine_tune(model, splits["train"], splits["dev"], splits["test"],
                     metric="pearson_spearman" if regression else "accuracy", regression=regression,
                     cfg=config(epochs=epochs), seed=seed, pad_id=0, device=torch.device("cpu"), progress=False)


def test_same_seed_same_numbers():
    a, b = run(seed=5), run(seed=5)
    assert a["test"] == b["test"] and a["dev"] == b["dev"]
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_it_learns_and_selects_on_dev():
    result = run(seed=0, epochs=6)
    assert result["test"]["score"] > 75.0
    dev_scores = [h["dev"]["score"] for h in result["history"]]
    assert result["dev"]["score"] == max(dev_scores)
    selected = next(h for h in result["history"] if h["step"] == result["selected_step"])
    assert selected["test"]["score"] == result["test"]["score"]   # test = the dev-selected checkpoint
    assert result["best_on_test"]["score"] == max(h["test"]["score"] for h in result["history"])


def test_hashee_with_a_fitted_frequency_hash_learns_the_task():
    train = toy_split(256, 0)
    token_hash = frequency_hash(train.input_ids, 120, [0, 2, 3], LAYERS, 3)
    exits = {int(token_hash.assign(np.array([t]), np.random.default_rng(0))[0]) for t in range(10, 60)}
    assert len(exits) > 1                                # tokens really leave at different layers
    result = run(seed=1, token_hash=token_hash, epochs=6)
    assert result["test"]["score"] > 90.0                # chance is about 50


def test_sts_b_style_regression_learns_a_correlation():
    kept = {}
    result = run(seed=0, epochs=10, regression=True, keep=kept)
    assert set(result["test"]) == {"pearson", "spearman", "score"}
    assert result["test"]["pearson"] > 80.0 and result["test"]["spearman"] > 80.0
    # A correlation alone could come from an untrained net (its sign is arbitrary): the predicted
    # scores must also sit on the 0-5 scale of the labels.
    test = kept["test"]
    scores = predict(kept["model"], test, config(), 0, torch.device("cpu"), regression=True)
    assert np.abs(scores - test.labels).mean() < 0.8      # an untrained net predicts ~0: error ~2.7


def test_linear_warmup_decay_known_factors():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = linear_warmup_decay(optimizer, total_steps=8, warmup_ratio=0.25)
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.5, 1.0, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])
