"""The inference session (earlyexit/models/inference_session.py): per-batch functions built once for
many batches, the same answers as without it, and a model changed inside is an error on leaving."""

import copy

import numpy as np
import pytest
import torch

from earlyexit.dynamic.exit_rules import NormalizedEntropyRule, entropy
from earlyexit.models.fast_linear import set_fast_linears
from earlyexit.models.multi_exit import MultiExitClassifier
from tests.conftest import tiny_classifier
from tests.test_dynamic_model import batch


def attention_model():
    m = MultiExitClassifier(tiny_classifier("bert", num_layers=4, num_labels=3), "attention").eval()
    set_fast_linears(m, True)          # the packed path (and the folded one-row head) the tiny width leaves off
    return m


def exits_of(m, ids, types, real, speed):
    out = [m.early_exit(ids[i:i + 1], types[i:i + 1], real[i:i + 1], NormalizedEntropyRule(speed))
           for i in range(len(ids))]
    together = m.early_exit(ids, types, real, NormalizedEntropyRule(speed))
    return [(r.logits, r.exit_layers) for r in out] + [(together.logits, together.exit_layers)]


def test_a_session_reuses_the_exit_functions_and_gives_the_same_answers():
    m = attention_model()
    ids, types, real = batch("bert")
    with torch.no_grad():                                 # the median row's at layer 1: half the rows leave there
        speed = float(entropy(m(ids, types, real).logits[0]).median()) / np.log(3) + 1e-6
    with torch.inference_mode():
        outside = exits_of(m, ids, types, real, speed)
        assert m.lean_exits(1) is not m.lean_exits(1)                   # built per batch
        with m.inference_session():
            inside = exits_of(m, ids, types, real, speed)
            one_row, many_rows = m.lean_exits(1), m.lean_exits()
            assert m.lean_exits(1) is one_row and m.lean_exits() is many_rows and one_row is not many_rows
            reference = m.truncated(ids[:1], types[:1], real[:1], 2)
            assert torch.equal(reference, m.truncated(ids[:1], types[:1], real[:1], 2))
        assert m.lean_exits(1) is not one_row                           # closed: built per batch again
    assert len({int(layer) for _, got in outside[:-1] for layer in got}) > 1
    for (got_logits, got_layers), (want_logits, want_layers) in zip(inside, outside):
        assert torch.equal(got_logits, want_logits) and (got_layers == want_layers).all()


def test_the_session_keys_on_grad_mode_and_cpu_autocast():
    """The packed path is chosen when the functions are built, by grad mode and autocast."""
    m = attention_model()
    with m.inference_session():
        with torch.no_grad():
            plain = m.lean_exits()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                assert m.lean_exits() is not plain
        assert m.lean_exits() is not plain
        with torch.no_grad():
            assert m.lean_exits() is plain


@pytest.mark.parametrize("change", ["weight in place", "train mode", "dtype"])
def test_a_model_changed_inside_a_session_is_an_error_on_leaving(change):
    m = attention_model()
    with pytest.raises(RuntimeError, match="changed inside the session"):
        with m.inference_session():
            if change == "weight in place":
                with torch.no_grad():
                    m.exits[0].dense.weight.mul_(2.0)
            elif change == "train mode":
                m.exits[1].train()
            else:
                m.to(torch.bfloat16)
    with m.inference_session():          # a session after the error opens and closes cleanly
        pass


def test_an_error_inside_a_session_passes_through_and_closes_it():
    m = attention_model()
    with pytest.raises(KeyError):
        with m.inference_session():
            raise KeyError("inside")
    assert m.lean_exits(1) is not m.lean_exits(1)


def test_nested_sessions_are_one_and_copies_open_none():
    m = attention_model()
    with m.inference_session():
        exits = m.lean_exits()
        with m.inference_session():
            assert m.lean_exits() is exits
        assert m.lean_exits() is exits                                 # the inner one did not close it
        clone = copy.deepcopy(m)
        assert clone.lean_exits() is not clone.lean_exits()


@pytest.mark.parametrize("name", ["consistentee", "berxit"])
def test_learned_rules_reuse_their_functions_in_a_session(name):
    from earlyexit.models.berxit import BERxiTClassifier, LTERule
    from earlyexit.models.consistentee import ConsistentEEClassifier, PolicyRule

    hf = tiny_classifier("bert", num_layers=4, num_labels=3)
    if name == "consistentee":
        m, make_rule, built = ConsistentEEClassifier(hf).eval(), lambda model: PolicyRule(model, 0.5), "_policies"
    else:
        m, make_rule, built = BERxiTClassifier(hf).eval(), lambda model: LTERule(model, 0.5), "_lte"
    ids, types, real = batch("bert")
    with torch.no_grad():
        outside = m.early_exit(ids, types, real, make_rule(m))
        first, second = make_rule(m), make_rule(m)
        with m.inference_session():
            for rule in (first, second):
                rule.start(len(ids), m.num_layers, ids.device)
            assert all(getattr(first, key) is getattr(second, key) for key in ("_pooled", built))
            inside = m.early_exit(ids, types, real, make_rule(m))
    assert torch.equal(inside.logits, outside.logits)
    assert np.array_equal(inside.exit_layers, outside.exit_layers)
