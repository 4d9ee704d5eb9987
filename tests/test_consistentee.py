"""ConsistentEE's exit decision, memorized layer, reward and REINFORCE pieces on hand-made numbers,
and a toy task on which the policy learns to exit early where layer 1 already solves an instance."""

import math

import numpy as np
import pytest
import torch

from earlyexit.models.consistentee import (LayerPolicies, first_exit, gather_exit, group_advantage,
                                           inference_exit_layers, memorized_layers, policy_loss, reward,
                                           rollout_losses, tile, trajectory_log_prob, weighted_exit_loss)
from earlyexit.training.loop import TrainConfig, TrainHooks, train_loop


def test_memorized_layer_is_where_correct_predictions_become_stable():
    correct = torch.tensor([
        [1, 1, 1, 1],   # right everywhere: 1
        [0, 1, 1, 1],   # right from layer 2 on: 2
        [1, 0, 1, 1],   # right at 1, forgotten at 2, stable from 3: 3
        [1, 1, 0, 1],   # stable only at the last layer: 4
        [1, 1, 1, 0],   # last exit wrong: the code's default L
        [0, 0, 0, 0],   # never right: also L (spec A1)
    ], dtype=torch.bool)
    assert memorized_layers(correct).tolist() == [1, 2, 3, 4, 4, 4]


def test_reward_is_the_papers_hardness_guided_one_and_the_codes_as_an_option():
    loss = torch.tensor([0.5, 0.5, 0.5, 0.5])
    exit_layer = torch.tensor([3, 3, 12, 1])
    memorized = torch.tensor([6, 12, 1, 1])
    got = reward(loss, exit_layer, memorized, num_layers=12, alpha=0.02)
    # -loss - alpha * (1 - m/L) * e
    want = [-0.5 - 0.02 * 0.5 * 3, -0.5, -0.5 - 0.02 * (11 / 12) * 12, -0.5 - 0.02 * (11 / 12) * 1]
    assert got.tolist() == pytest.approx(want)
    # an easy instance pays for every layer it uses; the hardest pays nothing
    assert got[2] < got[3] and got[1] == pytest.approx(-0.5)
    assert reward(loss, exit_layer, memorized, 12, alpha=0.02, hardness="none").tolist() == pytest.approx([-0.5] * 4)
    with pytest.raises(ValueError, match="reward hardness 'log'"):
        reward(loss, exit_layer, memorized, 12, alpha=0.02, hardness="log")


def test_inference_exits_at_the_first_layer_whose_policy_passes_one_half():
    probs = torch.tensor([[0.6, 0.1, 0.9],
                          [0.4, 0.5, 0.51],     # 0.5 is not > 0.5
                          [0.1, 0.2, 0.3]])     # never: the last layer answers
    assert inference_exit_layers(probs).tolist() == [1, 3, 3]
    assert first_exit(probs > 0.5)[1].tolist() == [True, True, False]


def test_trajectory_log_prob_counts_the_forced_final_exit_as_continue():
    probs = torch.tensor([[0.2, 0.7, 0.9], [0.2, 0.3, 0.4], [0.2, 0.3, 0.6]])
    exit_layer, chose = first_exit(probs > 0.5)
    assert exit_layer.tolist() == [2, 3, 3] and chose.tolist() == [True, False, True]
    got = trajectory_log_prob(probs, exit_layer, chose)
    want = [math.log(0.8) + math.log(0.7), math.log(0.8) + math.log(0.7) + math.log(0.6),
            math.log(0.8) + math.log(0.7) + math.log(0.6)]
    assert got.tolist() == pytest.approx(want)
    no_final = trajectory_log_prob(probs, exit_layer, chose, count_final_as_continue=False)
    assert no_final[1].item() == pytest.approx(math.log(0.8) + math.log(0.7))
    assert torch.isfinite(trajectory_log_prob(torch.tensor([[1.0, 0.0]]), torch.tensor([1]), torch.tensor([True]))).all()


def test_advantage_subtracts_the_mean_over_the_copies_of_each_instance():
    # B = 2 instances, K = 2 copies; copy j of instance i at row j*B + i
    rows = tile(torch.tensor([10, 20]), 2)
    assert rows.tolist() == [10, 20, 10, 20]
    assert group_advantage(torch.tensor([1.0, 2.0, 3.0, 6.0]), 2).tolist() == [-1.0, -2.0, 1.0, 2.0]
    log_prob = torch.tensor([0.1, 0.2, 0.3, 0.4], requires_grad=True)
    loss = policy_loss(log_prob, torch.tensor([1.0, 2.0, 3.0, 6.0]), 2)
    loss.backward()
    # d loss / d log pi = -A / (B*K): raise the log-probability of better-than-average copies
    assert log_prob.grad.tolist() == pytest.approx([0.25, 0.5, -0.25, -0.5])


def _policy_gradient(action_mode: str, seed: int = 0):
    """The policy loss and its gradient on the policies for B = 3 instances tiled K = 8 times, no
    dropout (the copies of an instance see the same state): exit 1 is wrong and exit 3 right, so
    copies that exit at different layers get different rewards."""
    torch.manual_seed(seed)
    layers, copies, hidden = 3, 8, 6
    policies = LayerPolicies(layers, hidden, width=4)
    with torch.no_grad():                       # P(exit) near 1/2 everywhere: sampling explores
        for policy in policies.layers:
            policy.out.weight.mul_(0.01)
            policy.out.bias.fill_(0.2)
    states = tile(torch.randn(3, layers, hidden), copies)
    labels = tile(torch.tensor([0, 1, 0]), copies)
    right = torch.nn.functional.one_hot(labels, 2).float() * 4 - 2
    logits = torch.stack([-right, -right, right], dim=1)          # wrong, wrong, right
    memorized = torch.full_like(labels, layers)
    out = rollout_losses(logits, policies.all_layers(states), labels, memorized, copies, alpha=0.0,
                         hardness="none", action_mode=action_mode, generator=torch.Generator().manual_seed(seed))
    out["policy"].backward()
    grad = torch.cat([p.grad.flatten() for p in policies.parameters() if p.grad is not None])
    return out, grad


def test_sampled_actions_give_the_policy_a_gradient_threshold_actions_do_not():
    """Issue 16: the released deterministic actions make the K copies of an instance act alike, so
    the advantage and the policy gradient are exactly zero; sampled actions (the default) do not."""
    out, grad = _policy_gradient("sample")
    advantage = group_advantage(out["reward"], 8)
    assert out["exit_layer"].unique().numel() > 1                  # the copies took different exits
    assert advantage.abs().max() > 0.1
    assert grad.abs().max() > 1e-4                                 # a real gradient on the policies
    out, grad = _policy_gradient("threshold")
    assert out["exit_layer"].view(8, -1).eq(out["exit_layer"][:3]).all()   # every copy alike
    assert group_advantage(out["reward"], 8).abs().max() == 0
    assert out["policy"].item() == 0 and grad.abs().max() == 0


def test_released_variant_is_the_released_code_and_default_samples():
    from earlyexit.dynamic.settings import method_settings, section
    from earlyexit.methods import get_method, training_runs
    from earlyexit.methods.consistentee import VARIANTS

    method = get_method("consistentee")
    assert VARIANTS["released"] == ("none", "threshold") and VARIANTS["default"] == ("linear", None)
    filled = method_settings(section(), "consistentee")
    assert filled["action_mode"] == "sample"
    # alpha: one run per grid value for the paper's reward, one run for the released -CE
    runs = training_runs(method, "default", {**filled, "alpha_grid": [0.0, 0.05]})
    assert runs == [("default@alpha=0", {"alpha": 0.0}), ("default@alpha=0.05", {"alpha": 0.05})]
    assert training_runs(method, "released", filled) == [("released", {})]
    assert method.paper_rival in __import__("earlyexit.methods", fromlist=["METHODS"]).METHODS


def test_weighted_exit_loss_and_gather():
    assert weighted_exit_loss(torch.tensor([1.0, 2.0, 3.0])).item() == pytest.approx((1 + 4 + 9) / 6)
    per_layer = torch.arange(24.0).view(2, 3, 4)
    assert gather_exit(per_layer, torch.tensor([3, 1])).tolist() == [per_layer[0, 2].tolist(), per_layer[1, 0].tolist()]


def toy_task(n: int = 64, layers: int = 4, hidden: int = 8, seed: int = 0):
    """Half the instances are right at every exit (easy), half only at the last one (hard); the
    policy's state shows which is which, plus noise. Frozen exit logits, as in stage 2."""
    g = torch.Generator().manual_seed(seed)
    easy = torch.arange(n) % 2 == 0
    labels = torch.randint(0, 2, (n,), generator=g)
    correct = easy[:, None] | (torch.arange(1, layers + 1) == layers)[None, :]
    predicted = torch.where(correct, labels[:, None], 1 - labels[:, None])
    logits = 3.0 * torch.nn.functional.one_hot(predicted, 2).float() - 1.5    # [n, L, 2]
    states = torch.randn(n, layers, hidden, generator=g)
    states[:, :, 0] = torch.where(easy, 1.0, -1.0)[:, None]
    return states, logits, labels, correct, easy


@pytest.mark.parametrize("action_mode", ["sample", "threshold"])
def test_policy_learns_to_exit_early_where_layer_one_already_solves_the_instance(action_mode):
    layers, copies = 4, 8
    states, logits, labels, correct, easy = toy_task(layers=layers)
    memorized = memorized_layers(correct)
    assert memorized[easy].eq(1).all() and memorized[~easy].eq(layers).all()
    torch.manual_seed(0)
    policies = LayerPolicies(layers, states.shape[-1], width=16)
    # "threshold" (the released code) explores only through dropout noise on the state (spec B2)
    dropout = torch.nn.Dropout(0.3)
    cfg = TrainConfig(lr=1e-2, batch_size=16, epochs=40, eval_batch_size=64, warmup_ratio=0.0, weight_decay=0.0,
                      grad_clip=1.0, max_seq_len=8, optimizer="adamw", evals_per_epoch=1, bf16=False, cpu_bf16=False,
                      track_best_on_test=False)

    def loss(rows):
        rows = torch.as_tensor(rows)
        idx = tile(rows, copies)
        probs = policies.all_layers(dropout(states[idx]) if action_mode == "threshold" else states[idx])
        return rollout_losses(logits[idx], probs, labels[idx], memorized[idx], copies, alpha=0.2,
                              action_mode=action_mode)["policy"]

    def evaluate():
        exits = inference_exit_layers(policies.all_layers(states))
        right = (gather_exit(logits, exits).argmax(-1) == labels).float().mean().item()
        return {"select": right - 0.01 * exits.float().mean().item(), "exits": exits}

    hooks = TrainHooks(epoch_batches=lambda rng: list(np.array_split(rng.permutation(len(labels)), 4)),
                       loss=loss, evaluate=evaluate)
    train_loop(policies, hooks, cfg, seed=0, progress=False)
    with torch.no_grad():
        exits = inference_exit_layers(policies.all_layers(states))
    assert exits[easy].float().mean() < 1.5          # easy instances leave at (almost always) layer 1
    assert exits[~easy].eq(layers).all()             # hard ones run to the layer that gets them right
    assert (gather_exit(logits, exits).argmax(-1) == labels).all()


def test_policy_rule_exits_where_the_policies_say_batched_as_one_by_one(padded_batch):
    from earlyexit.models.consistentee import ConsistentEEClassifier, PolicyRule
    from tests.conftest import tiny_classifier

    torch.manual_seed(3)
    model = ConsistentEEClassifier(tiny_classifier(num_layers=4, num_labels=3), policy_width=8).eval()
    ids, real, lengths = padded_batch
    mask = real.long()
    with torch.no_grad():
        logits, probs = model.states(ids, None, mask)
    first = probs[:, 0].sort(descending=True).values
    threshold = float(first[:2].mean())                     # only one row leaves at layer 1
    expected = inference_exit_layers(probs, threshold)
    assert len(set(expected.tolist())) > 1
    batched = model.early_exit(ids, None, mask, PolicyRule(model, threshold))
    assert batched.exit_layers.tolist() == expected.tolist()
    assert torch.allclose(batched.logits, gather_exit(logits, expected), atol=1e-5)
    for i, n in enumerate(lengths.tolist()):
        alone = model.early_exit(ids[i:i + 1, :n], None, mask[i:i + 1, :n], PolicyRule(model, threshold))
        assert int(alone.exit_layers[0]) == expected[i]
        assert torch.allclose(alone.logits[0], batched.logits[i], atol=1e-5)
    # one pooler shared by every exit; the policy reads it before the classifier dropout
    assert all(head.pooler is model.pooler for head in model.exits)


def test_one_row_policy_takes_its_gelu_and_output_layer_on_the_host_in_float64():
    """ExitPolicy.host_probabilities on one pooled vector: the hidden layer is the one device op,
    GELU, output layer and sigmoid run on the host in float64 (within 1e-12 of the policy in float64
    from the same hidden activations, within 1e-6 of the fp32 module); more rows take the device
    path. host_gelu_dot on known values: gelu(1) = Phi(1), gelu(-1) = -Phi(-1)."""
    from earlyexit.models.consistentee import ExitPolicy, host_gelu_dot
    from tests.test_dynamic_model import _aten_ops

    assert host_gelu_dot([1.0, -1.0, 0.0], [1.0, 1.0, 5.0], 0.25) == pytest.approx(
        0.25 + 0.8413447460685429 - 0.15865525393145707, rel=1e-15)
    torch.manual_seed(0)
    policy = ExitPolicy(24, width=8).eval()
    with torch.no_grad():
        policy.out.weight.mul_(4.0)                        # probabilities spread away from 1/2
        pooled = torch.randn(5, 24)
        fp32 = policy(pooled).tolist()
        probabilities = policy.host_probabilities()
        for row, expected in zip(pooled, fp32):
            (p,) = probabilities(row)
            hidden = torch.addmv(policy.hidden.bias, policy.hidden.weight, row).double()
            in_float64 = torch.sigmoid(policy.out.weight.double() @ torch.nn.functional.gelu(hidden)
                                       + policy.out.bias.double())
            assert p == pytest.approx(float(in_float64), rel=1e-12, abs=0)
            assert p == pytest.approx(expected, abs=1e-6)
        assert probabilities(pooled) == pytest.approx(fp32, abs=1e-6)
    row = pooled[0]       # one product; tolist() dispatches the two no-op resolves of any copy to the host
    assert _aten_ops(lambda: probabilities(row)) == ["aten.addmv", "aten.resolve_conj", "aten.resolve_neg"]
    assert "aten.gelu" in _aten_ops(lambda: probabilities(pooled))


def test_consistentee_policy_stage_trains_only_the_policies(tmp_path):
    """A policy-only step leaves every backbone and head weight as it was (spec 2.4)."""
    from earlyexit.methods import get_method

    method = get_method("consistentee")
    assert method.variants == ("default", "released")
    assert method.exit_support(type("T", (), {"is_regression": True})()) is not None
    from earlyexit.models.consistentee import ConsistentEEClassifier
    from tests.conftest import tiny_classifier

    model = ConsistentEEClassifier(tiny_classifier(num_layers=3, num_labels=2), policy_width=4)
    names = [n for n, _ in model.named_parameters() if n.startswith("policies.")]
    assert len(names) == 3 * 4 and all(n.startswith("policies.layers.") for n in names)


def test_alpha_runs_in_one_process_reuse_stage_one_with_the_same_results(tmp_path):
    """The runs of an alpha grid in one job (group_small_jobs) train the multi-exit stage once: the
    second run reuses its weights, and its record equals the record of a fresh process's run."""
    import json

    from earlyexit.dynamic.settings import method_settings, section
    from earlyexit.runs.experiment import run_experiment
    from earlyexit.methods import _dynamic
    from tests.conftest import tokenized_synth_nli
    from tests.test_methods_contract import BACKBONE, ONE_STEP

    tokenized_synth_nli(tmp_path, train_size=16)
    settings = {**method_settings(section(), "consistentee"), "copies": 2, "rl_batch_size": 4, "rl_epochs": 1,
                "rl_max_batches": 2, "joint_max_batches": 2}

    def run(alpha, name):
        out = tmp_path / f"{name}.json"
        run_experiment(preset="t", task_name="synth-nli", tokenized=tmp_path / "tok.npz",
                       tokenized_meta=tmp_path / "tok.json", backbone=BACKBONE, method="consistentee",
                       variant="default", artifacts={}, train_config=ONE_STEP, seed=1, reference_layers=12,
                       out_json=out, checkpoint=tmp_path / f"{name}.pt", device="cpu", progress=False,
                       method_settings=settings, train_setting={"alpha": alpha})
        return json.loads(out.read_text())

    _dynamic._SHARED_STAGES.clear()
    fresh = run(0.09, "fresh")
    _dynamic._SHARED_STAGES.clear()
    first = run(0.0, "first")
    reused = run(0.09, "reused")
    assert "reused" not in first["stages"][0] and reused["stages"][0]["reused"] is True
    assert reused["run"] == "default@alpha=0.09" and reused["train_setting"] == {"alpha": 0.09}
    for key in ("dev", "test", "mean_exit_layer", "speedup"):
        assert reused[key] == fresh[key], key
    assert [s["selected_step"] for s in reused["stages"]] == [s["selected_step"] for s in fresh["stages"]]
    assert [(p["stage"], p["step"], p["dev"]) for p in reused["history"]] == \
        [(p["stage"], p["step"], p["dev"]) for p in fresh["history"]]
    _dynamic._SHARED_STAGES.clear()
