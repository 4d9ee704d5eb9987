"""ConsistentEE's generation-side training (earlyexit/generation/llm_training.py): the memorized layer, the
rewards and the trajectory log-probability on hand-made cases; the policy learns to let the easy
half of synth-recall's tokens exit early; a killed policy stage resumes to the uninterrupted result;
LoRA adapters merge into the weights they adapt."""

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from earlyexit.generation import llm_training
from earlyexit.data.llm_tasks import synthetic_recall, token_kinds, write_examples
from earlyexit.generation.llm_training import (memorized_layers, rollout_exits, run_stage, stage_config, token_reward,
                                    trajectory_logp)
from earlyexit.training.state import StateFile


def stage(lr, epochs, batch_size=32, **extra):
    return {"enabled": True, "lr": lr, "batch_size": batch_size, "micro_batch_size": None, "epochs": epochs, "eval_batch_size": 64,
            "warmup_ratio": 0.0, "weight_decay": 0.0, "grad_clip": 1.0, "optimizer": "adamw",
            "evals_per_epoch": 1, "bf16": False, "cpu_bf16": False, **extra}


SETTINGS = {
    "synthetic": {"symbols": 16, "length": 5, "seed": 0, "sizes": {"train": 480, "dev": 32, "test": 16}},
    "max_prompt_len": 16, "max_target_len": 16, "policy": {"kind": "linear", "width": 32},
    "lora": {"enabled": False},
    "stages": {"base": stage(3e-3, 4), "exits": stage(3e-3, 1), "policy": stage(1e-2, 1), "joint": stage(3e-4, 1)},
    "consistentee": {"alpha": 0.1, "released_alpha": 1e-5, "copies": 4, "action": "threshold", "expert_copies": 1},
    "calm": {"thresholds": [0.9, 0.3]}, "truncation": {"depths": None},
    "generation": {"max_new_tokens": 12, "kv_mode": "fill", "test_limit": None, "timing": {"warmup": 0, "repeats": 1}},
}
BACKBONE = {"source": "random", "hidden_size": 64, "intermediate_size": 128, "num_layers": 4, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 64}


def test_memorized_layer_is_where_correct_answers_become_stable():
    correct = torch.tensor([[1, 1, 1, 1],      # right everywhere -> 1
                            [0, 1, 1, 1],      # -> 2
                            [1, 0, 1, 1],      # right at 1, wrong at 2: stable from 3
                            [1, 1, 1, 0],      # the last exit wrong -> L
                            [0, 0, 0, 0]], dtype=torch.bool)
    assert memorized_layers(correct).tolist() == [1, 2, 3, 4, 4]


def test_rewards_price_depth_by_hardness_or_uniformly():
    ce, exits = torch.tensor([0.5, 0.5, 2.0]), torch.tensor([1, 4, 4])
    released = token_reward(ce, exits, 0.1, None, 4)
    assert released.tolist() == pytest.approx([-0.6, -0.9, -2.4])
    memorized = torch.tensor([1, 1, 4])          # easy, easy, hard: the hard token pays nothing for depth
    hardness = token_reward(ce, exits, 0.1, memorized, 4)
    assert hardness.tolist() == pytest.approx([-0.5 - 0.1 * 0.75, -0.5 - 0.1 * 0.75 * 4, -2.0])


def test_trajectory_logp_and_exits_as_released():
    p = torch.tensor([[0.2, 0.7, 0.4, 0.9], [0.1, 0.2, 0.3, 0.9]])
    exits = rollout_exits(p, "threshold")
    assert exits.tolist() == [2, 4]              # the first p > 0.5 below the last layer; else the last
    logp = trajectory_logp(p, exits)
    eps = llm_training.EPS
    assert logp[0] == pytest.approx(math.log(0.8 + eps) + math.log(0.7 + eps))
    # never exited: the forced last exit counts as a continue, log(1 - p_L)
    assert logp[1] == pytest.approx(sum(math.log(1 - q + eps) for q in (0.1, 0.2, 0.3, 0.9)))
    expert = torch.tensor([True, False])
    assert rollout_exits(p, "threshold", expert).tolist() == [4, 4]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """synth-recall and the shared multi-exit LM (base LM + exits) on it."""
    from earlyexit.generation.llm_experiment import train_exits

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("llm")
    synthetic = SETTINGS["synthetic"]
    for split, rows in synthetic_recall(synthetic["sizes"], synthetic["symbols"], synthetic["length"], 0).items():
        write_examples(root / f"{split}.jsonl", rows)
    train_exits(task="synth-recall", split_dir=root, backbone=BACKBONE, settings=SETTINGS, seed=1, device="cpu",
                out_checkpoint=root / "exits.pt", out_summary=root / "exits.json")
    return root


def _load(root):
    from earlyexit.generation.llm_experiment import _setup

    tokenizer, splits, model = _setup("synth-recall", root, BACKBONE, SETTINGS, 1, torch.device("cpu"))
    saved = torch.load(root / "exits.pt", weights_only=False)
    model.load_state_dict(saved["model"])
    return tokenizer, splits, model, saved["memorized"]


def _policy_stage(root, state=None, action="threshold"):
    tokenizer, splits, model, memorized = _load(root)
    own = {**SETTINGS["consistentee"], "action": action}
    reward = {"reward": "hardness", "alpha": own["alpha"], "copies": own["copies"], "action": own["action"],
              "expert_copies": own["expert_copies"]}
    cfg = stage_config({**SETTINGS["stages"]["policy"], "evals_per_epoch": 2, "checkpoint_every_steps": 3}, 32)
    result = run_stage(model, "policy", splits, cfg, seed=1, pad_id=tokenizer.pad_id, device="cpu", settings=reward,
                       memorized=memorized, state=state)
    return model, result, tokenizer, splits


def test_policy_learns_to_let_the_easy_half_exit_early(trained):
    model, result, tokenizer, splits = _policy_stage(trained)
    easy, context = [], []
    for i in range(len(splits["test"])):
        out = model.generate(torch.as_tensor(splits["test"].prompts[i]), 10, model.policy_rule(),
                             eos_id=tokenizer.eos_id)
        kinds = token_kinds(tokenizer.decode(out.tokens).split())
        easy += [e for e, k in zip(out.exit_layers, kinds) if k]
        context += [e for e, k in zip(out.exit_layers, kinds) if not k]
    # easy tokens (each fully determined by the previous one) leave near layer 1; recalled ones go deep
    assert np.mean(easy) < 1.6 and np.mean(context) > np.mean(easy) + 1.5


class Killed(BaseException):
    """Stands for a kill: nothing on the way catches it."""


def test_a_killed_policy_stage_resumes_to_the_uninterrupted_result(trained, monkeypatch, tmp_path):
    whole, reference, _, _ = _policy_stage(trained, action="sample")
    state = StateFile(str(tmp_path / "run.state.pt"), {"test": "resume"})
    original, calls = llm_training.policy_loss, {"n": 0}

    def killed_at_step_5(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise Killed
        return original(*args, **kwargs)

    monkeypatch.setattr(llm_training, "policy_loss", killed_at_step_5)
    with pytest.raises(Killed):
        _policy_stage(trained, state=state, action="sample")
    monkeypatch.setattr(llm_training, "policy_loss", original)
    resumed, result, _, _ = _policy_stage(trained, state=state, action="sample")
    assert result["history"] == reference["history"]
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_lora_adapters_train_then_merge_into_the_weights(trained):
    from earlyexit.generation.llm_training import add_lora, merge_lora

    _, splits, model, _ = _load(trained)
    ids = torch.as_tensor(np.concatenate([splits["dev"].prompts[0], splits["dev"].targets[0]]))[None]
    add_lora(model, ["q_proj", "v_proj"], {"r": 4, "alpha": 8, "dropout": 0.0})
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.add_(0.05)                      # as if trained: the adapter now changes the output
        adapted = model.layer_states(ids)[-1]
    before = copy.deepcopy(model.layers[0].self_attn.k_proj.weight)
    merge_lora(model)
    assert not any("lora_" in n for n in model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model.layer_states(ids)[-1], adapted, rtol=1e-4, atol=1e-5)
    assert torch.equal(model.layers[0].self_attn.k_proj.weight, before)   # not adapted, not changed
    # the exits stage adapts the per-layer heads only (released: adapters on the LM heads)
    llm_training._trainable(model, "exits", {"stages": ["exits"], "r": 4, "alpha": 8, "dropout": 0.0,
                                             "target_modules": ["q_proj"]})
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == 2 * model.num_layers and all(n.startswith("heads.") and "lora_" in n for n in trainable)


def test_every_generation_method_writes_a_valid_record_then_the_table_and_figure(trained, tmp_path):
    """The generation methods' contract (the encoder contract test leaves generation_lm methods out):
    each variant runs on the shared checkpoint and writes a schema-checked record; the table shows
    CALM at the point matched to ConsistentEE and the figure renders."""
    from analysis.llm_early_exit import plot_llm_early_exit, write_llm_table
    from earlyexit.generation.llm_experiment import run_llm_method
    from earlyexit.methods import METHODS

    settings = {**SETTINGS, "generation": {**SETTINGS["generation"], "test_limit": 8}}
    paths = []
    for name, method in METHODS.items():
        for variant in method.variants if method.generation_lm else ():
            out = tmp_path / f"{name}-{variant}.json"
            record = run_llm_method(preset="t", task="synth-recall", split_dir=trained, backbone_name="tiny",
                                    backbone=BACKBONE, settings=settings, method=name, variant=variant, seed=1,
                                    device="cpu", checkpoint=trained / "exits.pt", out_json=out)
            assert record["points"] and all(p["instances"] == 8 for p in record["points"])
            paths.append(str(out))
    records = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    full = next(r for r in records if r["method"] == "full_llm")["points"][0]
    assert full["speedup"] == pytest.approx(1.0) and full["mean_exit_layer"] == 4
    tidy = write_llm_table(paths, tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.tex", preset="t")
    shown = tidy[tidy["shown"].astype(bool)]
    matched = shown[shown["matched_to"] != ""]
    assert set(matched["method"]) == {"calm"} and set(matched["matched_to"]) == {
        METHODS["consistentee_llm"].label(v) for v in METHODS["consistentee_llm"].variants}
    assert len(tidy[(tidy["method"] == "calm") & (tidy["matched_to"] == "")]) == 2     # both thresholds in the CSV
    text = (tmp_path / "t.md").read_text()
    assert "ConsistentEE" in text and "CALM" in text and "synthetic" in text
    plot_llm_early_exit(paths, tmp_path / "f.png", tmp_path / "f.pdf", preset="t")
    assert (tmp_path / "f.png").stat().st_size > 0


def test_the_llm_section_is_checked_at_start():
    from earlyexit.methods import llm_config_errors
    from earlyexit.methods import config_errors as encoder_errors
    from earlyexit.plumbing.config_check import llm_generation_errors

    assert llm_config_errors({"calm": None, "consistentee_llm": ["hardness"]}) == []
    assert llm_config_errors({"hashee": None})[0].startswith("config key 'llm_generation.methods.hashee': not a decoder-LM")
    assert "unknown variant 'x'" in llm_config_errors({"consistentee_llm": ["x"]})[0]
    assert "llm_generation.methods" in encoder_errors({"calm": None})[0]
    section = {"enabled": True, "tasks": ["synth-recall"], "methods": {"calm": None},
               "backbones": {"b": {"source": "hub"}}}
    errors = llm_generation_errors({"llm_generation": section})
    assert errors[0] == "config key 'llm_generation.backbones.b.hub_id': required when source is 'hub'"
    assert any("runs on random backbones only" in e for e in errors)


def test_micro_batches_give_the_whole_batch_step(trained):
    """Equal-length targets (synth-recall): the row-weighted micro-batch losses are the batch's token
    mean, so one step in micro-batches of 8 moves the weights as one step on the whole batch."""
    results = []
    for micro in (None, 8):
        tokenizer, splits, model, _ = _load(trained)
        splits = {**splits, "train": type(splits["train"])(splits["train"].prompts[:32], splits["train"].targets[:32],
                                                           splits["train"].references[:32])}
        cfg = stage_config(SETTINGS["stages"]["exits"], 32)
        run_stage(model, "exits", splits, cfg, seed=1, pad_id=tokenizer.pad_id, device="cpu", settings={},
                  micro_batch_size=micro)
        results.append(model.heads[2].weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=1e-4, atol=1e-6)
    assert not torch.equal(results[0], _load(trained)[2].heads[2].weight)
