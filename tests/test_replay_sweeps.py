"""Sweeps score every setting from one pass (earlyexit.models.multi_exit.replay_exit,
earlyexit.methods.cascadebert.replay_cascade): the exits and answers equal real early exit, for
every kind of rule (entropy, normalised entropy, patience, BERxiT's LTE, ConsistentEE's policy) and
for the cascade, in fp32 and under CPU bf16 autocast, with rows leaving at different layers."""

import numpy as np
import pytest
import torch

from earlyexit.dynamic.exit_rules import EntropyRule, NeverExit, NormalizedEntropyRule, PatienceRule, entropy
from earlyexit.models.multi_exit import MultiExitClassifier, replay_exit
from tests.conftest import tiny_classifier
from tests.test_dynamic_model import LENGTHS, batch


def hand_rules(m, ids, types, real):
    """Thresholds at medians of layer 2, so rows leave at several layers."""
    with torch.no_grad():
        logits = m(ids, types, real).logits
    h = entropy(logits[1])
    return [NeverExit(), EntropyRule(float(h.median()) + 1e-6),
            NormalizedEntropyRule(float((h / np.log(3)).median()) + 1e-6), PatienceRule(1), PatienceRule(2)]


def learned_models_and_rules(ids, types, real):
    from earlyexit.models.berxit import BERxiTClassifier, LTERule
    from earlyexit.models.consistentee import ConsistentEEClassifier, PolicyRule

    torch.manual_seed(3)
    berxit = BERxiTClassifier(tiny_classifier(num_layers=5, num_labels=3)).eval()
    consistent = ConsistentEEClassifier(tiny_classifier(num_layers=5, num_labels=3), policy_width=8).eval()
    with torch.no_grad():
        _, u = berxit.lte_forward(ids, types, real)
        _, probs = consistent.states(ids, types, real)
    # thresholds inside the spread of layer 1's outputs: some rows leave there, the rest later
    return [(berxit, LTERule(berxit, float(u[:, 0].median()))),
            (consistent, PolicyRule(consistent, float(probs[:, 0].median())))]


def assert_same_exits(model, rule, ids, types, real):
    real_exit = model.early_exit(ids, types, real, rule)
    replayed = replay_exit(model.layer_outputs(ids, types, real), rule)
    assert replayed.exit_layers.tolist() == real_exit.exit_layers.tolist()
    torch.testing.assert_close(replayed.logits.float(), real_exit.logits.float(), atol=2e-2 if
                               replayed.logits.dtype == torch.bfloat16 else 1e-5, rtol=1e-2)
    return set(real_exit.exit_layers.tolist())


@pytest.mark.parametrize("bf16", [False, True])
@pytest.mark.parametrize("heads", ["own-pooler", "shared-pooler", "attention"])
def test_replayed_exits_equal_real_early_exit(heads, bf16):
    m = MultiExitClassifier(tiny_classifier("bert", num_layers=5, num_labels=3, seed=0), heads).eval()
    ids, types, real = batch("bert")
    spread = set()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for rule in hand_rules(m, ids, types, real):
            spread |= assert_same_exits(m, rule, ids, types, real)
    assert len(spread) >= 3, "rows should leave at several layers (else the test proves little)"


@pytest.mark.parametrize("bf16", [False, True])
def test_replayed_learned_exits_equal_real_early_exit(bf16):
    ids, types, real = batch("bert")
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for model, rule in learned_models_and_rules(ids, types, real):
            assert len(assert_same_exits(model, rule, ids, types, real)) >= 2


def test_one_pass_serves_every_rule_and_matches_the_per_setting_sweep(tmp_path):
    """replay_rules (the sweep) gives each setting exactly what evaluate_with_rule gives it alone,
    while running every layer once per batch instead of once per setting."""
    from earlyexit.methods._dynamic import evaluate_with_rule, replay_rules
    m = MultiExitClassifier(tiny_classifier("bert", num_layers=5, num_labels=3, seed=1), "shared-pooler").eval()
    ids, types, real = batch("bert")
    calls = []
    hook = m.layers[0].register_forward_hook(lambda *args: calls.append(1))
    makers = [lambda t=t: PatienceRule(t) for t in (0, 1, 2, 3)]
    split, run_ctx = _toy_split_and_context(ids, types, real)
    try:
        together = replay_rules(m, split, makers, run_ctx)
    finally:
        hook.remove()
    assert len(calls) == 1                                    # one batch, one pass of layer 1
    for make_rule, replayed in zip(makers, together):
        alone = evaluate_with_rule(m, split, make_rule, run_ctx)
        assert replayed.exit_layers.tolist() == alone.exit_layers.tolist()
        assert replayed.predictions.tolist() == alone.predictions.tolist()
        assert replayed.metrics == alone.metrics


def _toy_split_and_context(ids, types, real):
    from types import SimpleNamespace

    from earlyexit.data.encoded import EncodedSplit

    rows = [(ids[i, :n].numpy(), types[i, :n].numpy()) for i, n in enumerate(LENGTHS)]
    split = EncodedSplit(input_ids=[r[0] for r in rows], token_type_ids=[r[1] for r in rows],
                         labels=np.array([0, 1, 2, 0, 1, 2, 0, 1]))
    task = SimpleNamespace(is_regression=False, metric="accuracy")
    train_config = SimpleNamespace(eval_batch_size=len(LENGTHS), autocast_bf16=lambda device: False)
    ctx = SimpleNamespace(task=task, train_config=train_config, device=torch.device("cpu"), meta={"pad_id": 0})
    return split, ctx


def test_replayed_cascade_equals_the_real_cascade_at_every_threshold(cascade_and_batch):
    from earlyexit.methods.cascadebert import replay_cascade
    from tests.test_cascadebert import real_cascade

    from earlyexit.models.cascade import confidence
    from earlyexit.models.multi_exit import pad_batch

    cascade, split = cascade_and_batch
    ids, types, mask, _ = pad_batch(split, np.arange(len(split)), pad_id=0)
    with torch.no_grad():
        conf = confidence(cascade.small(input_ids=ids, token_type_ids=types, attention_mask=mask).logits)
    # thresholds between the rows' confidences: every escalated fraction from none to all
    thresholds = [0.0, *[float(c) for c in conf.sort().values], 1.0]
    replayed = replay_cascade(cascade, split, thresholds, 4, 0, torch.device("cpu"), bf16=False)
    fractions = set()
    for threshold, (predictions, escalated) in zip(thresholds, replayed):
        expected, expected_up = real_cascade(cascade, split, threshold, 4)
        assert predictions.tolist() == expected.tolist() and escalated.tolist() == expected_up.tolist()
        fractions.add(float(escalated.mean()))
    assert {0.0, 1.0} <= fractions and len(fractions) >= 4


from tests.test_cascadebert import cascade_and_batch  # noqa: E402,F401  (the fixture)
