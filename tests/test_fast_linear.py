"""The one fast linear path (earlyexit/models/fast_linear.py) is a property of the backbone: every
timed method's model carries it, and on it every method's inference equals its module path (1e-5 in
fp32); bf16 inference stays within a stated tolerance of fp32. The tiny backbones are narrower than
where the path is on by default, so the tests switch it on."""

import copy

import numpy as np
import pytest
import torch

from earlyexit.data.batching import collate, evaluation_batches
from earlyexit.models.fast_linear import (FastIntermediate, FastLinear, FastOutput, _packable, install_fast_linears,
                                          set_fast_linears, uses_fast_linears)
from tests.conftest import tiny_classifier

def _timed_methods():
    from earlyexit.methods import METHODS

    return [name for name, method in METHODS.items() if method.timed]


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """A RunContext maker on synth-nli tokenised for the tiny 2-layer backbone."""
    from earlyexit.data.tasks import get_task
    from earlyexit.dynamic.settings import method_settings, section
    from earlyexit.data.encoded import load_encoded
    from earlyexit.methods import RunContext, get_method
    from earlyexit.plumbing.files import read_json
    from tests.conftest import tokenized_synth_nli
    from tests.test_methods_contract import BACKBONE, ONE_STEP, make_artifacts

    root = tokenized_synth_nli(tmp_path_factory.mktemp("fast"), train_size=16)
    splits, meta = load_encoded(root / "tok.npz"), read_json(root / "tok.json")

    def make(name: str):
        method = get_method(name)
        variant = "frequency" if "frequency" in method.variants else method.variants[0]
        settings = method_settings(section(), name) if method.family == "dynamic" else {}
        return method, RunContext(task=get_task("synth-nli"), backbone=BACKBONE, variant=variant, seed=1, splits=splits,
                                  meta=meta, artifacts=make_artifacts(root, method.artifacts(variant, 1)),
                                  train_config=ONE_STEP, device=torch.device("cpu"), progress=False, settings=settings)

    return make


def _setting(method, task):
    """A mid-grid setting: some rows leave early, some do not (None: nothing to set)."""
    if method.family != "dynamic":
        return None
    settings = method.sweep_settings(task)
    return settings[len(settings) // 2]


def _outputs(timed, split, pad_id, batch_size=4):
    """Logits and per-row outputs of every batch, in batch order."""
    prepared = timed.prepare(split)
    out = []
    with torch.inference_mode():
        for indices in evaluation_batches(prepared, batch_size):
            logits, per_row = timed.forward(collate(prepared, indices, pad_id, timed.num_layers))
            out.append((logits.float(), per_row))
    return out


@pytest.mark.parametrize("name", _timed_methods())
def test_every_timed_method_runs_the_fast_path_and_it_equals_the_module_path(name, context, monkeypatch):
    method, ctx = context(name)
    timed = method.timed_model(ctx, None, _setting(method, ctx.task))
    assert uses_fast_linears(timed.model), f"{name}: its backbone does not carry the fast linear path"
    calls = []
    packed = FastLinear._packed
    monkeypatch.setattr(FastLinear, "_packed", lambda self, dtype: calls.append(dtype) or packed(self, dtype))
    split = ctx.splits["test"]
    set_fast_linears(timed.model, True)
    fast = _outputs(timed, split, ctx.meta["pad_id"])
    assert calls and set(calls) == {torch.float32}, f"{name}: inference did not take the packed path"
    set_fast_linears(timed.model, False)
    calls.clear()
    module = _outputs(timed, split, ctx.meta["pad_id"])
    assert not calls
    for (fast_logits, fast_rows), (module_logits, module_rows) in zip(fast, module):
        torch.testing.assert_close(fast_logits, module_logits, atol=1e-5, rtol=0)
        assert (fast_rows is None and module_rows is None) or (np.asarray(fast_rows) == np.asarray(module_rows)).all()


# bf16 keeps 8 significant bits (relative step 2**-8). On these tiny random models bf16 inference
# (weights cast, every product rounded) was measured within 0.0045 of the fp32 logits over every
# timed method (autocast too); the bound is about 4x that.
BF16_LOGITS_ATOL = 0.02


@pytest.mark.parametrize("name", _timed_methods())
def test_every_timed_method_in_bf16_matches_fp32(name, context):
    """At the method's never-exit setting (or its exits from the hash), so that bf16 rounding cannot
    move an exit decision across a threshold; the fast path on, as on a bf16 CPU."""
    method, ctx = context(name)
    setting = method.never_exit_setting(ctx.task)
    timed = method.timed_model(ctx, None, setting)
    set_fast_linears(timed.model, True)
    split = ctx.splits["test"]
    fp32 = _outputs(timed, split, ctx.meta["pad_id"])
    timed.model.to(torch.bfloat16)
    bf16 = _outputs(timed, split, ctx.meta["pad_id"])
    for (ref, ref_rows), (got, got_rows) in zip(fp32, bf16):
        torch.testing.assert_close(got, ref, atol=BF16_LOGITS_ATOL, rtol=0)
        assert (ref_rows is None and got_rows is None) or (np.asarray(ref_rows) == np.asarray(got_rows)).all()


def test_bf16_autocast_runs_packed_bf16_and_matches_fp32(padded_batch):
    ids, real, _ = padded_batch
    hf = install_fast_linears(tiny_classifier("bert", 4), enabled=True)
    with torch.inference_mode():
        expected = hf(input_ids=ids, attention_mask=real.long()).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = hf(input_ids=ids, attention_mask=real.long()).logits
    query = hf.bert.encoder.layer[0].attention.self.query
    assert query.__dict__["_packed_cache"][1][1].dtype == torch.bfloat16       # the packed bias
    torch.testing.assert_close(got.float(), expected, atol=BF16_LOGITS_ATOL, rtol=0)


def test_install_keeps_parameters_and_state_dict_and_is_idempotent():
    hf = tiny_classifier("bert", 2)
    before = dict(hf.named_parameters())
    keys = list(hf.state_dict())
    install_fast_linears(hf, enabled=True)
    assert uses_fast_linears(hf) and list(hf.state_dict()) == keys
    assert all(p is before[n] for n, p in hf.named_parameters())         # the same tensors: optimizers keep working
    assert isinstance(hf.bert.encoder.layer[0].intermediate, FastIntermediate)
    layers = copy.deepcopy(hf.bert.encoder.layer)
    install_fast_linears(hf)
    assert [type(m) for m in hf.bert.encoder.layer.modules()] == [type(m) for m in layers.modules()]
    # a linear replaced afterwards (head pruning) is converted by a second call
    hf.bert.encoder.layer[0].attention.self.query = torch.nn.Linear(32, 32)
    assert not uses_fast_linears(hf)
    install_fast_linears(hf)
    assert uses_fast_linears(hf)


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_output_blocks_fuse_the_residual_add_and_equal_hf(kind):
    """Both output blocks of each layer (attention output, FFN output) become FastOutputs whose
    packed path adds the residual inside the GEMM: equal to HF's block (1e-5), and in training
    (dropout on) HF's own order of operations, dropout before the add."""
    hf = tiny_classifier(kind, 2).eval()
    layer = hf.base_model.encoder.layer[0]
    blocks = {"attention": copy.deepcopy(layer.attention.output), "ffn": copy.deepcopy(layer.output)}
    install_fast_linears(hf, enabled=True)
    fast = {"attention": layer.attention.output, "ffn": layer.output}
    assert all(isinstance(block, FastOutput) for block in fast.values())
    torch.manual_seed(0)
    for name, block in blocks.items():
        x = torch.randn(3, 5, block.dense.in_features)
        residual = torch.randn(3, 5, block.dense.out_features)
        with torch.inference_mode():
            torch.testing.assert_close(fast[name](x, residual), block(x, residual), atol=1e-5, rtol=0)
        fast[name].train(), block.train()
        torch.manual_seed(1)
        dropped = fast[name](x, residual)
        torch.manual_seed(1)
        torch.testing.assert_close(dropped, block(x, residual), atol=1e-6, rtol=0)
        assert not torch.allclose(dropped, fast[name].eval()(x, residual))   # dropout really acted


def test_packed_weights_follow_in_place_updates_optimizer_steps_and_copies(padded_batch):
    ids, real, _ = padded_batch
    hf = install_fast_linears(tiny_classifier("bert", 4), enabled=True)

    def both():
        with torch.inference_mode():
            fast = hf(input_ids=ids, attention_mask=real.long()).logits
            set_fast_linears(hf, False)
            module = hf(input_ids=ids, attention_mask=real.long()).logits
            set_fast_linears(hf, True)
        torch.testing.assert_close(fast, module, atol=1e-5, rtol=0)
        return fast

    first = both()
    with torch.no_grad():    # an in-place update by an ordinary op bumps the version counter
        hf.bert.encoder.layer[0].intermediate.dense.weight.mul_(-1.0)
    assert not torch.allclose(both(), first)
    # a fused AdamW step (no version bump) between train() and eval(), as in training
    optimizer = torch.optim.AdamW(hf.parameters(), lr=0.1, fused=True)
    hf.train()
    hf(input_ids=ids, attention_mask=real.long()).logits.sum().backward()
    optimizer.step()
    hf.eval()
    both()
    copied = copy.deepcopy(hf)       # a copy packs its own weights
    assert "_packed_cache" not in copied.bert.encoder.layer[0].attention.self.query.__dict__
    with torch.inference_mode():
        torch.testing.assert_close(copied(input_ids=ids, attention_mask=real.long()).logits, both(), atol=1e-5, rtol=0)



def test_a_bf16_packed_bias_follows_an_in_place_update(padded_batch):
    """Under bf16 autocast the packed bias is a bf16 copy of the fp32 one: an in-place update of the
    bias alone packs again."""
    ids, real, _ = padded_batch
    if not _packable(torch.bfloat16):
        pytest.skip("this CPU's oneDNN packs no bf16 weights")
    hf = install_fast_linears(tiny_classifier("bert", 2), enabled=True)
    dense = hf.bert.encoder.layer[0].intermediate.dense

    def fast_and_module():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            fast = hf(input_ids=ids, attention_mask=real.long()).logits
            set_fast_linears(hf, False)
            module = hf(input_ids=ids, attention_mask=real.long()).logits
            set_fast_linears(hf, True)
        return fast.float(), module.float()

    before, _ = fast_and_module()
    with torch.no_grad():
        dense.bias.add_(4.0)
    fast, module = fast_and_module()
    assert dense.__dict__["_packed_cache"][1][1].equal(dense.bias.bfloat16())
    assert not torch.allclose(fast, before)
    torch.testing.assert_close(fast, module, atol=BF16_LOGITS_ATOL, rtol=0)


def test_training_and_autograd_use_the_module_path(padded_batch):
    ids, real, _ = padded_batch
    hf = install_fast_linears(tiny_classifier("bert", 2), enabled=True)
    hf(input_ids=ids, attention_mask=real.long()).logits.sum().backward()
    assert all("_packed_cache" not in m.__dict__ for m in hf.modules() if isinstance(m, FastLinear))
    assert hf.bert.encoder.layer[0].attention.self.query.weight.grad is not None


def test_an_empty_fast_linear_answers_like_nn_linear():
    """HeadPrune can leave a layer with no heads: its output projection then reads zero features."""
    from earlyexit.models.fast_linear import FastLinear

    torch.manual_seed(0)
    layer = FastLinear(0, 4).eval()
    x = torch.randn(3, 5, 0)
    with torch.no_grad():
        out = layer(x)
    torch.testing.assert_close(out, torch.nn.functional.linear(x, layer.weight, layer.bias))
    assert out.shape == (3, 5, 4)
