"""CascadeBERT (earlyexit/models/cascade.py, earlyexit/methods/cascadebert.py): routing on
hand-made probabilities, the real cascade against each model run alone, the cost of a cascaded
instance, the DAR loss on known values and the easy/hard labels."""

import math

import numpy as np
import pytest
import torch

from earlyexit.data.encoded import EncodedSplit
from earlyexit.cost.flops import ModelDims, elue_protocol_flops, full_flops
from earlyexit.methods.cascadebert import cascade_cost
from earlyexit.models.cascade import (CascadeClassifier, answered_by_small, confidence, dar_loss,
                                      difficulty_labels, truncated_copy)
from earlyexit.models.multi_exit import pad_batch
from tests.conftest import tiny_classifier


def logits_of(probabilities):
    return torch.log(torch.tensor(probabilities, dtype=torch.float32))


def test_routing_keeps_rows_whose_confidence_is_strictly_above_the_threshold():
    small = logits_of([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8], [0.5, 0.5]])
    assert confidence(small).tolist() == pytest.approx([0.9, 0.6, 0.7, 0.8, 0.5])
    assert answered_by_small(small, 0.7).tolist() == [True, False, False, True, False]   # 0.7 is not > 0.7
    assert answered_by_small(small, 0.5).tolist() == [True, True, True, True, False]     # a tie never exits
    assert not answered_by_small(small, 1.0).any()                                        # theta 1: all cascade
    three = logits_of([[0.4, 0.35, 0.25], [0.34, 0.33, 0.33]])
    assert answered_by_small(three, 0.339).tolist() == [True, True]
    assert answered_by_small(three, 0.35).tolist() == [True, False]


@pytest.fixture
def cascade_and_batch():
    big = tiny_classifier(num_layers=4, num_labels=3, seed=3)
    cascade = CascadeClassifier(truncated_copy(big, 2, seed=4), big).eval()
    rng = np.random.default_rng(0)
    lengths = [9, 4, 12, 6, 7, 3]
    split = EncodedSplit(input_ids=[np.concatenate([[2], rng.integers(5, 120, n - 1)]) for n in lengths],
                         token_type_ids=[np.zeros(n, dtype=np.int64) for n in lengths],
                         labels=np.array([0, 1, 2, 0, 1, 2]))
    return cascade, split


def real_cascade(model, split, threshold: float, batch_size: int):
    """The cascade really run over a split (the big model only on escalated rows), batch by batch:
    the reference the sweep's replay and the timing runner are checked against. (predictions,
    escalated) in split order."""
    from earlyexit.data.batching import evaluation_batches

    model.eval()
    predictions, escalated = np.zeros(len(split), dtype=np.int64), np.zeros(len(split), dtype=bool)
    for indices in evaluation_batches(split, batch_size):
        ids, types, mask, _ = pad_batch(split, indices, pad_id=0)
        logits, up = model.cascade(ids, types, mask, threshold, mask.sum(1).numpy())
        predictions[indices], escalated[indices] = logits.argmax(-1).numpy(), up
    return predictions, escalated


def one_row_logits(model, split, i):
    ids, types, mask, _ = pad_batch(split, [i], pad_id=0)
    with torch.no_grad():
        return model(input_ids=ids, token_type_ids=types, attention_mask=mask).logits[0]


def test_cascade_answers_each_row_with_the_model_the_rule_picks_and_runs_big_only_where_needed(cascade_and_batch):
    cascade, split = cascade_and_batch
    ids, types, mask, _ = pad_batch(split, np.arange(len(split)), pad_id=0)
    lengths = mask.sum(1).numpy()
    with torch.no_grad():
        small_all = cascade.small(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
    conf = confidence(small_all)
    threshold = float(conf.median())                 # about half the rows cascade
    seen = []
    hook = cascade.big.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["input_ids"].shape),
                                                 with_kwargs=True)
    try:
        logits, escalated = cascade.cascade(ids, types, mask, threshold, lengths)
    finally:
        hook.remove()
    assert escalated.tolist() == (conf <= threshold).tolist() and 0 < escalated.sum() < len(split)
    rows = np.flatnonzero(escalated)
    # the big model saw exactly the escalated rows, cut to their longest real length
    assert seen == [torch.Size([len(rows), int(lengths[rows].max())])]
    for i in range(len(split)):
        alone = one_row_logits(cascade.big if escalated[i] else cascade.small, split, i)
        torch.testing.assert_close(logits[i], alone, rtol=1e-5, atol=1e-5)   # batched == one by one


def test_threshold_one_is_the_big_model_everywhere_and_zero_the_small_one(cascade_and_batch):
    cascade, split = cascade_and_batch
    ids, types, mask, _ = pad_batch(split, np.arange(len(split)), pad_id=0)
    with torch.no_grad():
        big, small = (m(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
                      for m in (cascade.big, cascade.small))
    logits, escalated = cascade.cascade(ids, types, mask, 1.0)      # lengths read from the mask
    assert escalated.all()
    torch.testing.assert_close(logits, big)
    logits, escalated = cascade.cascade(ids, types, mask, 0.0)
    assert not escalated.any()
    torch.testing.assert_close(logits, small)


def test_a_cascaded_instance_costs_the_small_plus_the_big_model(cascade_and_batch):
    cascade, _ = cascade_and_batch
    assert cascade.cost_layers(np.array([True, False])).tolist() == [2 + 4, 2]
    d = ModelDims(hidden=768, heads=12, intermediate=3072, num_layers=12, num_labels=2)
    small = ModelDims(768, 12, 3072, 2, 2)
    cost = cascade_cost(np.array([30, 30, 9]), np.array([True, False, True]), small, d)
    assert cost.tokens.tolist() == [30, 30, 9]
    assert cost.method_flops.tolist() == pytest.approx([full_flops(30, small) + full_flops(30, d), full_flops(30, small),
                                                        full_flops(9, small) + full_flops(9, d)])
    assert cost.elue_depth.tolist() == [14, 2, 14]
    # the ELUE counter is linear in depth: a cascaded instance is a 14-layer line (spec 2.4)
    layer = elue_protocol_flops(30, 13, d) - elue_protocol_flops(30, 12, d)
    assert elue_protocol_flops(30, 14, d) == pytest.approx(elue_protocol_flops(30, 12, d) + 2 * layer)


def test_dar_loss_known_values_and_gradient():
    conf = torch.tensor([0.9, 0.7, 0.6], requires_grad=True)
    hard = torch.tensor([False, True, False])
    loss = dar_loss(conf, hard, margin=0.5)        # pairs (0.9, 0.7) -> 0.3 and (0.6, 0.7) -> 0.6
    assert loss.item() == pytest.approx(0.45)
    loss.backward()
    assert conf.grad.tolist() == pytest.approx([-0.5, 1.0, -0.5])
    # an easy row far enough above every hard one costs nothing
    assert dar_loss(torch.tensor([0.95, 0.3, 0.4]), torch.tensor([False, True, True]), 0.5).item() == pytest.approx(0.0)
    # a batch without one of the kinds gives 0, still attached to the graph
    none_hard = dar_loss(torch.tensor([0.2, 0.3], requires_grad=True), torch.tensor([False, False]), 0.5)
    assert none_hard.item() == 0.0 and none_hard.requires_grad


def test_dar_draws_hard_partners_uniformly_with_replacement():
    torch.manual_seed(0)
    conf = torch.tensor([1.0] * 4000 + [0.9, 0.3])        # 4000 easy rows, two hard ones
    hard = torch.tensor([False] * 4000 + [True, True])
    # partner 0.9 costs 0.4, partner 0.3 costs 0: the mean is 0.4 x the share drawn of the first
    assert dar_loss(conf, hard, 0.5).item() == pytest.approx(0.2, abs=0.02)


def test_difficulty_labels_easy_only_when_every_seed_is_right():
    correct = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]], dtype=bool)
    assert difficulty_labels(correct).tolist() == [False, True, True, False]
    with pytest.raises(ValueError, match="seeds, instances"):
        difficulty_labels(np.ones(4, dtype=bool))


def test_truncated_copy_keeps_the_first_layers_and_a_fresh_head():
    big = tiny_classifier(num_layers=4, seed=5)
    small = truncated_copy(big, 2, seed=6)
    assert small.config.num_hidden_layers == 2 and big.config.num_hidden_layers == 4
    assert len(small.base_model.encoder.layer) == 2 and len(big.base_model.encoder.layer) == 4
    for a, b in zip(small.base_model.encoder.layer.parameters(), list(big.base_model.encoder.layer[:2].parameters())):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    assert not torch.equal(small.classifier.weight, big.classifier.weight)
    with pytest.raises(ValueError, match="1..3 layers"):
        truncated_copy(big, 4, seed=0)
    assert math.isfinite(float(small.classifier.weight.detach().std()))


def test_folds_are_seeded_and_balanced():
    from earlyexit.methods.cascadebert import fold_of

    fold = fold_of(11, 3, seed=5)
    assert sorted(np.bincount(fold).tolist()) == [3, 4, 4]
    assert fold.tolist() == fold_of(11, 3, seed=5).tolist() and fold.tolist() != fold_of(11, 3, seed=6).tolist()


def test_difficulty_labels_come_from_models_that_did_not_fit_the_instance(tmp_path, monkeypatch):
    """A small model that memorises what it fitted and is wrong elsewhere: scored on its own training
    data (the old labelling) every instance looked easy; out of fold, every instance is hard."""
    import earlyexit.methods.cascadebert as cascade
    from earlyexit.dynamic.settings import method_settings, section
    from tests.conftest import tokenized_synth_nli

    tokenized = tokenized_synth_nli(tmp_path / "nli", train_size=24)
    settings = {**method_settings(section(), "cascadebert"), "label_seeds": 2, "label_folds": 3}
    ctx = _context("synth-nli", tokenized, settings)
    fits = []

    def memorising_hooks(model, fit_ctx):
        model.fitted = {id(ids) for ids in fit_ctx.splits["train"].input_ids}
        fits.append(len(fit_ctx.splits["train"]))

    def recall(model, split, *args, **kwargs):       # right exactly on what the model fitted
        seen = np.array([id(ids) in model.fitted for ids in split.input_ids])
        return np.where(seen, split.labels, (split.labels + 1) % 3)

    monkeypatch.setattr(cascade, "_classifier_hooks", memorising_hooks)
    monkeypatch.setattr("earlyexit.training.fine_tuning.predict_classifier", recall)
    monkeypatch.setattr("earlyexit.training.loop.train_loop", lambda *args, **kwargs: None)
    small = cascade.METHOD.build(ctx).small
    hard = cascade.hard_instances(small, ctx)
    assert hard.all() and len(hard) == 24
    assert fits == [16] * 6               # 2 seeds x 3 folds, each fitted on the other two folds


# --- the method end to end on a tiny backbone ---------------------------------------------------

def _run(root, task, tokenized, settings=None, seed=1):
    from earlyexit.dynamic.settings import method_settings, section
    from earlyexit.runs.experiment import run_experiment
    from tests.test_methods_contract import BACKBONE, ONE_STEP

    settings = {**method_settings(section(), "cascadebert"), "label_seeds": 2, **(settings or {})}
    ckpt = root / f"{task}-seed{seed}.pt"
    record = run_experiment(preset="t", task_name=task, tokenized=tokenized / "tok.npz", tokenized_meta=tokenized / "tok.json",
                            backbone=BACKBONE, method="cascadebert", variant="default", artifacts={},
                            train_config=ONE_STEP, seed=seed, reference_layers=12, out_json=root / f"{task}-seed{seed}.json",
                            checkpoint=ckpt, device="cpu", progress=False, method_settings=settings)
    return record, ckpt, settings


def _context(task_name, tokenized, settings, seed=1):
    import torch

    from earlyexit.data.tasks import get_task
    from earlyexit.data.encoded import load_encoded
    from earlyexit.methods.base import RunContext
    from earlyexit.plumbing.files import read_json
    from tests.test_methods_contract import BACKBONE, ONE_STEP

    return RunContext(task=get_task(task_name), backbone=BACKBONE, variant="default", seed=seed,
                      splits=load_encoded(tokenized / "tok.npz"), meta=read_json(tokenized / "tok.json"), artifacts={},
                      train_config=ONE_STEP, device=torch.device("cpu"), settings=settings)


def test_run_records_the_big_model_and_the_sweep_scores_the_real_cascade(tmp_path):
    from earlyexit.methods import get_method
    from tests.conftest import tokenized_synth_nli

    tokenized = tokenized_synth_nli(tmp_path / "nli", train_size=32)
    record, ckpt, settings = _run(tmp_path, "synth-nli", tokenized)
    cascade = record["cascade"]
    # the 2-layer test backbone gets a 1-layer small model, cut from it: the approximation, said so
    assert cascade["approximated"] and cascade["small_layers"] == 1 and cascade["big_layers"] == 2
    assert record["label"] == "CascadeBERT (approximated)"
    assert cascade["label_seeds"] == 2 and 0.0 <= cascade["hard_fraction"] <= 1.0
    assert record["speedup"]["flops_vs_own_full"] == pytest.approx(1.0)     # the big model alone
    assert not list(tmp_path.glob("*.train_state.pt")), "every stage's state is removed with the record"

    method = get_method("cascadebert")
    ctx = _context("synth-nli", tokenized, settings)
    never, always = method.score_sweep(ctx, str(ckpt), [{"threshold": 1.0}, {"threshold": 0.0}])
    # theta 1: every instance pays both models and gets the big model's answer (the record's score)
    assert never.test["score"] == pytest.approx(record["test"]["score"])
    assert never.dev["score"] == pytest.approx(record["dev"]["score"])
    assert set(never.test_exit_layers) == {3} and never.test_cost.elue_depth.tolist() == [3.0] * len(never.test_exit_layers)
    assert never.extra["escalated_fraction"] == {"dev": 1.0, "test": 1.0}
    # theta 0: the small model answers everything, at 1 layer
    assert set(always.test_exit_layers) == {1} and always.extra["escalated_fraction"]["test"] == 0.0
    assert (always.test_cost.method_flops < never.test_cost.method_flops).all()
    assert method.sweep_settings(ctx.task)[0] == {"threshold": 0.5}


def test_regression_trains_the_big_model_alone_and_records_that_the_cascade_cannot_run(tmp_path):
    from earlyexit.data.prepare import prepare_task
    from earlyexit.runs.experiment import tokenize_task
    from earlyexit.methods import get_method
    from tests.test_methods_contract import BACKBONE

    root = tmp_path / "sim"
    prepare_task("synth-similarity", "synthetic", root / "data", synthetic_sizes={"train": 16, "dev": 12, "test": 12})
    tokenize_task(task_name="synth-similarity", split_dir=root / "data", backbone=BACKBONE, max_seq_len=32,
                  out_npz=root / "tok.npz", out_meta=root / "tok.json")
    record, ckpt, settings = _run(tmp_path, "synth-similarity", root)
    assert "regression" in record["exit_unsupported"] and "label_seeds" not in record["cascade"]
    assert record["speedup"]["flops_vs_own_full"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cascadebert on synth-similarity: cascade exit is undefined for regression"):
        get_method("cascadebert").score_sweep(_context("synth-similarity", root, settings), str(ckpt), [{"threshold": 0.9}])


def test_a_run_killed_in_its_joint_training_resumes_and_ends_identically(tmp_path, monkeypatch):
    """Killed after the labelling stages, during the joint training: the rerun finds the labelling
    stages done (their states at their last step), resumes the joint training from its last state
    and writes the uninterrupted record and weights."""
    import earlyexit.models.cascade as cascade_module
    from earlyexit.runs.experiment import train_state_path
    from earlyexit.training.loop import TrainConfig
    from tests.conftest import tokenized_synth_nli

    class Killed(Exception):
        pass

    tokenized = tokenized_synth_nli(tmp_path / "nli", train_size=64)
    eight_steps = TrainConfig(lr=1e-3, batch_size=16, epochs=2, eval_batch_size=16, warmup_ratio=0.25, weight_decay=0.0,
                              grad_clip=1.0, max_seq_len=32, track_best_on_test=True, optimizer="adamw",
                              evals_per_epoch=2, bf16=False, cpu_bf16=False, checkpoint_every_steps=3)
    original, calls = cascade_module.dar_loss, {"n": 0, "kill": None}

    def counting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["kill"]:
            raise Killed
        return original(*args, **kwargs)

    monkeypatch.setattr(cascade_module, "dar_loss", counting)
    monkeypatch.setattr("tests.test_methods_contract.ONE_STEP", eight_steps)
    whole, whole_ckpt, _ = _run(tmp_path / "whole", "synth-nli", tokenized)
    calls.update(n=0, kill=5)
    with pytest.raises(Killed):
        _run(tmp_path / "killed", "synth-nli", tokenized)
    out = tmp_path / "killed" / "synth-nli-seed1.json"
    # 2 labelling seeds x 2 folds, each stage kept at its last step
    assert train_state_path(out).exists() and len(list((tmp_path / "killed").glob("*.labels*.train_state.pt"))) == 4
    calls.update(n=0, kill=None)
    resumed, resumed_ckpt, _ = _run(tmp_path / "killed", "synth-nli", tokenized)
    assert calls["n"] == 8 - 4               # joint training resumed at step 4 of 8 (its last state before the kill)
    timings = ("train_seconds", "eval_seconds", "total_seconds")
    assert {k: v for k, v in resumed.items() if k not in timings} == {k: v for k, v in whole.items() if k not in timings}
    a, b = torch.load(whole_ckpt), torch.load(resumed_ckpt)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not list((tmp_path / "killed").glob("*.train_state.pt"))
