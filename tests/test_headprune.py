"""HeadPrune: head gates on a v5 encoder, physical head removal, gradient importance, the pruning
plan, and the FLOPs of a pruned model (analytic count = torch's FlopCounterMode)."""

import dataclasses

import numpy as np
import pytest
import torch

from earlyexit.data.encoded import EncodedSplit
from earlyexit.data.batching import attach_exit_layers, collate
from earlyexit.cost.flops import (ModelDims, elue_equivalent_depth, elue_layer_macs, elue_protocol_flops, full_flops,
                             speedup_record)
from earlyexit.training.head_pruning import counter_speedup, head_importance, kept_heads, pruning_order, pruning_plan
from earlyexit.models.encoder_classifier import EncoderClassifier
from earlyexit.models.head_gates import HeadGates, prune_heads
from tests.conftest import tiny_classifier
from tests.test_flops import _counted_flops

KEEP = [[0, 2], [], [1, 2, 3], [0, 1, 2, 3]]     # 4 layers of 4 heads; layer 2 loses every head


def batch(rows=3, width=11, seed=1, pad_id=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (rows, width), generator=g)
    lengths = [width, 7, 4][:rows]
    split = EncodedSplit(input_ids=[ids[r, :n].numpy() for r, n in enumerate(lengths)],
                         token_type_ids=None, labels=np.array([0, 2, 1][:rows]))
    attach_exit_layers(split, None, 4, np.random.default_rng(0))
    return split, collate(split, np.arange(rows), pad_id, 4)


def logits(model, b):
    with torch.no_grad():
        return model(b.input_ids, b.token_type_ids, b.schedule)


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_gates_at_one_equal_the_plain_hf_model(kind):
    hf = tiny_classifier(kind, num_layers=4)
    pad = hf.config.pad_token_id
    _, b = batch(pad_id=pad)
    plain = hf(input_ids=b.input_ids, attention_mask=b.schedule.key_mask[:, 0, 0, :].long()).logits.detach()
    model = EncoderClassifier(hf).eval()
    assert torch.allclose(logits(model, b), plain, atol=1e-6)
    with HeadGates(hf) as gates:
        gates.values = [torch.ones(4) for _ in range(4)]
        assert torch.allclose(logits(model, b), plain, atol=1e-6)
        gates.values[1] = torch.tensor([1.0, 0.0, 1.0, 1.0])
        assert (logits(model, b) - plain).abs().max() > 1e-5         # a gate at 0 does act
    assert torch.allclose(logits(model, b), plain, atol=1e-6)           # hooks gone with the context


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_physically_pruned_model_equals_the_gated_model_with_those_gates_at_zero(kind):
    hf = tiny_classifier(kind, num_layers=4)
    _, b = batch(pad_id=hf.config.pad_token_id)
    model = EncoderClassifier(hf).eval()
    with HeadGates(hf) as gates:
        gates.set_mask(KEEP)
        masked = logits(model, b)
    assert prune_heads(hf, KEEP) == [2, 0, 3, 4]
    attention = hf.base_model.encoder.layer[0].attention
    assert attention.self.query.weight.shape == (16, 32) and attention.output.dense.weight.shape == (32, 16)
    assert torch.allclose(logits(model, b), masked, atol=1e-6)
    assert sum(p.numel() for p in hf.parameters()) < sum(p.numel() for p in tiny_classifier(kind, 4).parameters())


def test_importance_is_the_gate_gradient_per_token_and_zero_for_a_dead_head():
    hf = tiny_classifier("bert", num_layers=2)
    # head 1 of layer 0 reads nothing: zero value projection -> zero context -> zero importance
    value = hf.base_model.encoder.layer[0].attention.self.value
    with torch.no_grad():
        value.weight[8:16] = 0
        value.bias[8:16] = 0
    split, b = batch()
    attach_exit_layers(split, None, 2, np.random.default_rng(0))
    model = EncoderClassifier(hf)
    raw = head_importance(model, split, pad_id=0, regression=False, device=torch.device("cpu"), batch_size=2,
                          normalize=False)
    assert raw[0, 1] == 0 and (raw[:, [0, 2, 3]] > 0).all()

    # independently: |<dL/dctx, ctx>| per real token, from the contexts' own gradients
    contexts = []
    handles = [layer.attention.output.dense.register_forward_pre_hook(
        lambda module, args: contexts.append(args[0].retain_grad() or args[0]))
        for layer in hf.base_model.encoder.layer]
    expected, tokens = np.zeros((2, 4)), 0
    order = np.argsort(split.lengths, kind="stable")
    for rows in (order[:2], order[2:]):
        contexts.clear()
        b = collate(split, rows, 0, 2)
        loss = torch.nn.functional.cross_entropy(model(b.input_ids, None, b.schedule), b.labels, reduction="sum")
        loss.backward()
        real = b.schedule.key_mask[:, 0, 0, :, None].float()
        for layer, ctx in enumerate(contexts):
            per_token = (ctx.grad * ctx).view(*ctx.shape[:2], 4, 8).sum(-1).abs()       # [B, T, heads]
            expected[layer] += (per_token * real).sum((0, 1)).detach().numpy()
        tokens += int(real.sum())
    for handle in handles:
        handle.remove()
    np.testing.assert_allclose(raw, expected / tokens, rtol=1e-5, atol=1e-12)

    normalized = head_importance(model, split, pad_id=0, regression=False, device=torch.device("cpu"), batch_size=2)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0)
    np.testing.assert_allclose(normalized, raw / np.linalg.norm(raw, axis=1, keepdims=True))


def test_per_batch_importance_takes_the_absolute_value_of_the_summed_gradient():
    hf = tiny_classifier("bert", num_layers=2)
    split, _ = batch()
    attach_exit_layers(split, None, 2, np.random.default_rng(0))
    model = EncoderClassifier(hf)
    kwargs = dict(pad_id=0, regression=False, device=torch.device("cpu"), batch_size=8, normalize=False)
    per_token = head_importance(model, split, **kwargs)
    per_batch = head_importance(model, split, absolute="per_batch", **kwargs)
    assert (per_batch <= per_token + 1e-12).all() and (per_batch < per_token).any()   # |sum| <= sum |.|
    with pytest.raises(ValueError, match="per_token"):
        head_importance(model, split, absolute="signed", **kwargs)


def test_pruning_order_and_plan():
    importance = np.array([[0.5, 0.1, 0.9, 0.2], [0.3, 0.3, 0.05, 0.8]])
    assert pruning_order(importance)[:4] == [(1, 2), (0, 1), (0, 3), (1, 0)]
    assert kept_heads(pruning_order(importance), 3, 2, 4) == [[0, 2], [0, 1, 3]]
    dims = ModelDims(hidden=32, heads=4, intermediate=64, num_layers=2, num_labels=2)
    lengths = np.array([10, 20, 30])
    plan = pruning_plan(importance, dims, lengths, target=1.2, step_fraction=0.25)
    assert [s.removed for s in plan] == list(range(2, 2 * len(plan) + 1, 2))
    assert all(a.speedup < b.speedup for a, b in zip(plan, plan[1:]))       # more heads gone, faster
    assert plan[-1].speedup >= 1.2 > plan[-2].speedup                       # stops at the first step reaching it
    everything = pruning_plan(importance, dims, lengths, target=100.0, step_fraction=0.25)
    assert everything[-1].removed == 8 and everything[-1].keep == [[], []]  # unreachable: every head goes
    tiny = pruning_plan(importance, dims, lengths, target=100.0, step_fraction=0.05)
    assert [s.removed for s in tiny] == list(range(1, 9))                   # 5% of 8 heads: one per step


def test_flops_drop_as_heads_are_removed_and_match_the_flop_counter():
    hf = tiny_classifier("bert", num_layers=4)
    ids = torch.randint(5, 120, (1, 17), generator=torch.Generator().manual_seed(0))
    dims = ModelDims.from_hf_config(hf.config)
    before = full_flops(17, dims)
    assert before == _counted_flops(lambda: hf(input_ids=ids))
    prune_heads(hf, KEEP)
    pruned = ModelDims.from_hf_config(hf.config, layer_heads=[2, 0, 3, 4])
    counted = _counted_flops(lambda: EncoderClassifier(hf)(ids, None, batch(1, 17)[1].schedule))
    assert counted == full_flops(17, pruned) < before
    previous = before + 1
    for removed in range(17):           # one head at a time: strictly cheaper, exact and ELUE counts
        heads = [4 - min(4, max(0, removed - 4 * layer)) for layer in range(4)]
        d = dataclasses.replace(dims, layer_heads=tuple(heads))
        assert full_flops(17, d) < previous
        previous = full_flops(17, d)
        assert elue_equivalent_depth(17, d) == pytest.approx(sum(elue_layer_macs(17, d, k) for k in heads)
                                                             / elue_layer_macs(17, d))
    assert elue_equivalent_depth(17, dims) == pytest.approx(4.0)
    assert counter_speedup(np.array([17]), dims, [4, 4, 4, 4]) == pytest.approx(1.0)


def test_elue_counter_of_a_pruned_layer_follows_the_spec_formula():
    # baselines-spec 3.4: MACs = (8H^2 + 4H) L + 4 L H (h' d) + h' (2 L^2 + 2 d L^2), with I = 4H
    d = ModelDims(hidden=768, heads=12, intermediate=3072, num_layers=12, num_labels=2)
    for kept in (12, 7, 0):
        n = 128
        assert elue_layer_macs(n, d, kept) == (8 * 768 ** 2 + 4 * 768) * n + 4 * n * 768 * kept * 64 \
            + kept * (2 * n * n + 2 * 64 * n * n)
    assert elue_layer_macs(128, d, 12) == elue_layer_macs(128, d)
    # heads are about 35% of a layer at L = 128 (spec): removing all of them is about 1.54x
    assert 1 / (elue_layer_macs(128, d, 0) / elue_layer_macs(128, d)) == pytest.approx(1.54, abs=0.01)


def test_speedup_record_of_a_pruned_model_is_against_the_unpruned_backbone():
    d = ModelDims(hidden=64, heads=4, intermediate=128, num_layers=6, num_labels=2, layer_heads=(0, 1, 2, 3, 4, 4))
    tokens = np.array([12, 30])
    flops = np.array([full_flops(int(n), d) for n in tokens])
    depth = np.array([elue_equivalent_depth(int(n), d) for n in tokens])
    record = speedup_record(tokens, flops, depth, d, reference_layers=6)
    full = sum(full_flops(int(n), d.unpruned) for n in tokens)
    assert record["flops"]["full_per_instance"] == pytest.approx(full / 2)
    assert record["speedup"]["flops_vs_own_full"] == record["speedup"]["flops"] == pytest.approx(full / flops.sum())
    assert record["speedup"]["elue_vs_own_full"] == pytest.approx(counter_speedup(tokens, d, d.layer_heads))
    assert record["speedup"]["elue_vs_own_full"] > 1
    with pytest.raises(ValueError, match="layer_heads"):
        ModelDims(hidden=64, heads=4, intermediate=128, num_layers=2, num_labels=2, layer_heads=(5, 4))
    assert elue_protocol_flops(12, 6, d) == elue_protocol_flops(12, 6, d.unpruned)


def test_a_headprune_run_removes_heads_to_the_target_and_counts_the_pruned_model(tmp_path):
    from earlyexit.data.encoded import load_encoded
    from earlyexit.runs.experiment import run_experiment
    from earlyexit.methods.headprune import METHOD, target_speedup
    from tests.conftest import tokenized_synth_nli
    from tests.test_methods_contract import BACKBONE, ONE_STEP, make_artifacts

    root = tokenized_synth_nli(tmp_path, train_size=16)
    record = run_experiment(preset="t", task_name="synth-nli", tokenized=root / "tok.npz",
                            tokenized_meta=root / "tok.json", backbone=BACKBONE, method="headprune", variant="default",
                            artifacts=make_artifacts(root, METHOD.artifacts("default", 1)), train_config=ONE_STEP,
                            seed=1, reference_layers=2, out_json=root / "run.json", checkpoint=root / "pruned.pt",
                            device="cpu", progress=False)
    info = record["headprune"]
    assert info["target_speedup"] == target_speedup("SNLI") == 1.5 and target_speedup("SST-2") == 1.3
    assert [s["removed"] for s in info["curve"]] == list(range(1, info["heads_removed"] + 1))  # 4 heads: one a step
    assert info["curve"][-1]["speedup"] >= 1.5 or info["heads_removed"] == 4
    assert len(info["curve"]) == 1 or info["curve"][-2]["speedup"] < 1.5
    assert sum(info["layer_heads"]) == 4 - info["heads_removed"] and "score" in info["no_retrain"]["test"]
    lengths = load_encoded(root / "tok.npz")["test"].lengths
    full, pruned = ModelDims(32, 2, 64, 2, 3), ModelDims(32, 2, 64, 2, 3, layer_heads=tuple(info["layer_heads"]))
    assert record["num_layers"] == 2
    assert record["flops"]["method_per_instance"] == pytest.approx(np.mean([full_flops(int(n), pruned) for n in lengths]))
    assert record["speedup"]["flops_vs_own_full"] == pytest.approx(
        sum(full_flops(int(n), full) for n in lengths) / sum(full_flops(int(n), pruned) for n in lengths))
    assert record["speedup"]["elue_vs_own_full"] == pytest.approx(counter_speedup(lengths, full, info["layer_heads"]))
    saved = torch.load(root / "pruned.pt", weights_only=True)
    # the saved weights are the pruned ones: the output projection reads 16 columns per kept head
    assert [saved[f"bert.encoder.layer.{i}.attention.output.dense.weight"].shape[1] // 16 for i in range(2)] == \
        info["layer_heads"]
