"""ConsistentEE's training of a multi-exit causal LM, as released (consistentee-spec section 8),
every stage one call of the suite's one training loop (resumable through its StateFile):

- base:   the backbone as a plain LM (CE at the last layer with the model's own head); the demo
          trains its tiny random LLaMA from scratch here, the paper preset instruction-tunes the hub
          model (the released runs start from Alpaca-LoRA);
- exits:  (released mode 1) the per-layer heads only, loss sum_l l * CE_l / sum_l l; afterwards the
          per-token memorized layer on the training split (spec 2.2, per token);
- policy: (mode 2) the policies only, REINFORCE over K copies of each row with a group-mean baseline;
          reward per token -CE(exit) - alpha * w * e, w = 1 - m/L (the paper's hardness-guided reward,
          m the token's memorized layer) or w = 1 (the released code's); the first copy is an expert
          that never exits and logpi is divided by the exit layer, both as released;
- joint:  (mode 3, LLM version) every trainable weight, CE at each token's exit layer only.

LoRA (peft; r, alpha, dropout from the config) is added for a stage where the config says so and
merged into the weights when the stage ends, as released; else the stage fine-tunes fully.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F

from earlyexit.generation.llm_data import LMSplit, collate_lm, epoch_batches
from earlyexit.training.loop import TrainConfig, TrainHooks, train_loop

log = logging.getLogger("earlyexit.llm")
STAGES = ("base", "exits", "policy", "joint")
EPS = 1e-6                                  # the LLM code's epsilon inside log(p)


def stage_config(stage: dict, max_seq_len: int) -> TrainConfig:
    keys = ("lr", "batch_size", "epochs", "eval_batch_size", "warmup_ratio", "weight_decay", "grad_clip",
            "optimizer", "evals_per_epoch", "bf16", "cpu_bf16")
    return TrainConfig(**{k: stage[k] for k in keys}, max_seq_len=max_seq_len, track_best_on_test=False,
                       checkpoint_every_steps=stage.get("checkpoint_every_steps", 0))


# ---------------------------------------------------------------- losses

def layer_ce(model, states: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """CE of every exit at every position, [B, T, L] (0 where the label is -100)."""
    out = [F.cross_entropy(model.exit_logits(l, s).float().transpose(1, 2), labels, ignore_index=-100, reduction="none")
           for l, s in enumerate(states)]
    return torch.stack(out, dim=-1)


def weighted_exit_loss(ce: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Released mode 1: sum_l l * CE_l / sum_l l, mean over target tokens."""
    L = ce.shape[-1]
    weights = torch.arange(1, L + 1, dtype=ce.dtype, device=ce.device)
    return ((ce * weights).sum(-1) / weights.sum())[valid].mean()


def memorized_layers(correct: torch.Tensor) -> torch.Tensor:
    """Per token (spec 2.2): the smallest l such that exits l..L are all right; L when exit L is
    wrong. `correct` [..., L] bool -> [...] int in 1..L."""
    L = correct.shape[-1]
    # suffix_all[l] = all exits l..L correct, computed from the last layer down
    suffix_all = torch.flip(torch.cumprod(torch.flip(correct.long(), [-1]), -1), [-1]).bool()
    first = torch.where(suffix_all, torch.arange(1, L + 1, device=correct.device), L + 1).min(-1).values
    return torch.where(first > L, torch.full_like(first, L), first)


def rollout_exits(probs: torch.Tensor, action: str, expert: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Exit layer (1..L) of each row of probs [..., L]: the first layer < L whose action is exit
    (threshold: p > 0.5, the released rule; sample: u < p), else L. `expert` rows never exit."""
    L = probs.shape[-1]
    if action == "threshold":
        act = probs > 0.5
    elif action == "sample":
        act = torch.rand(probs.shape, generator=generator, device=probs.device) < probs
    else:
        raise ValueError(f"action mode {action!r} is not threshold or sample")
    act[..., L - 1] = False
    if expert is not None:
        act &= ~expert[..., None]
    layers = torch.arange(1, L + 1, device=probs.device)
    return torch.where(act, layers, L + 1).min(-1).values.clamp(max=L)


def trajectory_logp(probs: torch.Tensor, exits: torch.Tensor) -> torch.Tensor:
    """log pi of each row as released: sum of log(1 - p_l) for l < e, plus log p_e; a row at the last
    layer counts its forced exit as a continue (log(1 - p_L))."""
    L = probs.shape[-1]
    layers = torch.arange(1, L + 1, device=probs.device)
    e = exits[..., None]
    cont = torch.log(1 - probs + EPS) * ((layers < e) | ((layers == L) & (e == L)))
    leave = torch.log(probs + EPS) * ((layers == e) & (e < L))
    return (cont + leave).sum(-1)


def token_reward(ce_at_exit: torch.Tensor, exits: torch.Tensor, alpha: float, memorized: torch.Tensor | None,
                 num_layers: int) -> torch.Tensor:
    """-CE - alpha * w * e per token; w = 1 - m/L with the memorized layer m (hardness), or 1 (released)."""
    weight = 1.0 if memorized is None else 1 - memorized.float() / num_layers
    return -ce_at_exit - alpha * weight * exits.float()


def policy_loss(probs: torch.Tensor, ce: torch.Tensor, valid: torch.Tensor, memorized: torch.Tensor | None, *,
                copies: int, alpha: float, action: str, expert_copies: int, generator=None) -> tuple:
    """REINFORCE over `copies` rollouts of every token (probs, ce [B, T, L]; memorized [B, T] or None).
    Returns (loss, mean reward, mean exit layer) over the target tokens."""
    L = probs.shape[-1]
    tiled = probs.unsqueeze(0).expand(copies, *probs.shape)                      # [K, B, T, L]
    expert = torch.zeros(tiled.shape[:-1], dtype=torch.bool, device=probs.device)
    expert[:expert_copies] = True
    with torch.no_grad():
        exits = rollout_exits(tiled.detach(), action, expert, generator)         # [K, B, T]
        ce_at = ce.unsqueeze(0).expand(copies, *ce.shape).gather(-1, (exits - 1)[..., None]).squeeze(-1)
        reward = token_reward(ce_at, exits, alpha, memorized, L)
        advantage = reward - reward.mean(0, keepdim=True)
    logp = trajectory_logp(tiled, exits) / exits.float()                          # released: divided by e
    mask = valid.unsqueeze(0).expand_as(logp)
    loss = -(advantage * logp)[mask].mean()
    return loss, float(reward[mask].mean()), float(exits[mask].float().mean())


# ---------------------------------------------------------------- LoRA

def add_lora(model, targets: list[str] | str, lora: dict) -> None:
    """LoRA adapters on the named Linear modules (peft); everything else frozen."""
    from peft import LoraConfig, inject_adapter_in_model

    for p in model.parameters():
        p.requires_grad_(False)
    inject_adapter_in_model(LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                       target_modules=targets), model)


def merge_lora(model) -> None:
    """Merge every LoRA adapter into its base weight and drop the adapter modules (as released
    between stages)."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            setattr(parent, name.rsplit(".", 1)[-1], module.get_base_layer())


def _trainable(model, stage: str, lora: dict | None) -> None:
    """What each stage trains: full fine-tuning, or LoRA where the config enables it for the stage."""
    groups = {"base": ["hf"], "exits": ["heads"], "policy": ["policies"], "joint": ["hf", "heads"]}[stage]
    if lora and stage in lora["stages"]:
        # a list matches module-name suffixes; one string is a full-match regex (peft)
        targets = {"base": lora["target_modules"], "joint": lora["target_modules"],
                   "exits": r".*heads\.\d+"}.get(stage)
        if targets is not None:
            add_lora(model, targets, lora)
            return
    for name, p in model.named_parameters():
        p.requires_grad_(name.split(".")[0] in groups)


# ---------------------------------------------------------------- the stages

def run_stage(model, stage: str, splits: dict[str, LMSplit], cfg: TrainConfig, *, seed: int, pad_id: int, device,
              settings: dict, memorized: list[np.ndarray] | None = None, state=None, progress: bool = False,
              lora: dict | None = None, micro_batch_size: int | None = None) -> dict:
    """Train one stage on the one loop; returns the loop's result (+ the stage name). The loss is
    the mean over a batch's target tokens of each micro-batch, weighted by its rows."""
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} is not one of {STAGES}")
    model.to(device)
    _trainable(model, stage, lora)
    train = splits["train"]
    generator = torch.Generator(device=device)

    def tensors(split, indices):
        batch = collate_lm(split, indices, pad_id).to(device)
        return batch, batch.labels != -100

    def stage_loss(split, indices, train_mode: bool):
        batch, valid = tensors(split, indices)
        if stage == "base":
            h = model.layer_states(batch.input_ids)[-1]
            logits = model.hf.lm_head(h).float()
            return F.cross_entropy(logits.transpose(1, 2), batch.labels, ignore_index=-100), {}
        with torch.set_grad_enabled(train_mode and stage in ("exits", "joint")):
            states = model.layer_states(batch.input_ids)
        if stage == "exits":
            return weighted_exit_loss(layer_ce(model, states, batch.labels), valid), {}
        if stage == "joint":
            with torch.no_grad():
                exits = rollout_exits(model.exit_probs(states), "threshold")
            ce = layer_ce(model, states, batch.labels)
            return ce.gather(-1, (exits - 1)[..., None]).squeeze(-1)[valid].mean(), {"exit": float(exits[valid].float().mean())}
        with torch.no_grad():
            ce = layer_ce(model, states, batch.labels)
        probs = model.exit_probs([s.detach() for s in states])
        m = None
        if settings["reward"] == "hardness":
            m = torch.zeros_like(batch.labels)
            for b, i in enumerate(batch.indices):
                m[b, valid[b]] = torch.as_tensor(memorized[i], device=device)
        if not train_mode:                   # dev: the deterministic rule, one copy
            exits = rollout_exits(probs, "threshold")
            ce_at = ce.gather(-1, (exits - 1)[..., None]).squeeze(-1)
            reward = token_reward(ce_at, exits, settings["alpha"], m, model.num_layers)
            return -reward[valid].mean(), {"exit": float(exits[valid].float().mean())}
        loss, _, _ = policy_loss(probs, ce, valid, m, copies=settings["copies"], alpha=settings["alpha"],
                                 action=settings["action"], expert_copies=settings["expert_copies"],
                                 generator=generator)
        return loss, {}

    def evaluate():
        dev = splits["dev"]
        totals, extra = [], []
        for indices in np.array_split(np.arange(len(dev)), max(1, math.ceil(len(dev) / cfg.eval_batch_size))):
            loss, info = stage_loss(dev, indices, train_mode=False)
            totals.append(float(loss) * len(indices))
            extra.append(info.get("exit", math.nan) * len(indices))
        dev_loss = sum(totals) / len(dev)
        point = {"dev": {"loss": dev_loss}, "select": -dev_loss}
        if stage in ("policy", "joint"):
            point["dev"]["mean_exit_layer"] = sum(extra) / len(dev)
        return point

    def before_step(step: int):
        generator.manual_seed(seed * 100003 + step)      # rollouts follow from the step alone (resumable)

    def train_loss(indices):
        """The batch's loss, in micro-batches of `micro_batch_size` rows (released: batch 128 as 32
        micro-batches of 4): all but the last backpropagated here, each weighted by its share."""
        size = micro_batch_size or len(indices)
        parts = [indices[i:i + size] for i in range(0, len(indices), size)]
        done = 0.0
        for part in parts[:-1]:
            loss = stage_loss(train, part, train_mode=True)[0] * (len(part) / len(indices))
            loss.backward()
            done += float(loss.detach())
        return stage_loss(train, parts[-1], train_mode=True)[0] * (len(parts[-1]) / len(indices)) + done

    hooks = TrainHooks(epoch_batches=lambda rng: epoch_batches(len(train), cfg.batch_size, rng),
                       loss=train_loss, evaluate=evaluate, before_step=before_step)
    result = train_loop(model, hooks, cfg, seed, progress=progress, desc=stage, state=state)
    if lora and stage in lora["stages"]:
        merge_lora(model)
    for p in model.parameters():
        p.requires_grad_(False)
    return {**result, "stage": stage}


@torch.no_grad()
def memorized_layers_of(model, split: LMSplit, pad_id: int, batch_size: int, device) -> list[np.ndarray]:
    """Per training example, the memorized layer of each target token (eval mode, all exits)."""
    model.eval()
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(split)
    for start in range(0, len(split), batch_size):
        indices = np.arange(start, min(start + batch_size, len(split)))
        batch = collate_lm(split, indices, pad_id).to(device)
        states = model.layer_states(batch.input_ids)
        correct = torch.stack([model.exit_logits(l, s).argmax(-1) == batch.labels for l, s in enumerate(states)], -1)
        m = memorized_layers(correct)
        valid = batch.labels != -100
        for b, i in enumerate(indices):
            out[i] = m[b][valid[b]].cpu().numpy().astype(np.int64)
    return out
