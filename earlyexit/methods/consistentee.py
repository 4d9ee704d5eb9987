"""ConsistentEE (Zeng et al., AAAI 2024; consistentee-spec.md): early exit as reinforcement learning.
A policy per layer (on the shared pooler's [CLS] vector) decides exit or continue; each instance
only has to be right at the exit it takes. Stages, each a call of the one training loop:
1. multi-exit fine-tuning, per-exit losses weighted by layer index (policies untouched) [2.1];
   then the memorized layer of every training (and dev) instance: the smallest l from which every
   exit is right, L if the last is wrong [2.2];
2. policy-only REINFORCE, backbone frozen but in train mode, the batch tiled K times, advantage =
   reward minus the mean over an instance's copies [2.3-2.4];
3. joint: the exit-layer loss of each row plus the same policy loss, every parameter [2.5];
   stages 2-3 repeat `rounds` times [2.6].
Variant `default`: the PAPER's hardness-guided reward r = -CE - alpha (1 - m/L) e, with training
actions drawn from the policy's Bernoulli (`dynamic.consistentee.action_mode`, default sample): the
released code's deterministic actions give the K copies of an instance the same trajectory, zero
advantage and no policy gradient (spec B2). alpha is a training-time sweep (`alpha_grid`, 0 = the
released reward): one run per value, the runs form one curve. Variant `released`: the released code
as it is, r = -CE and actions 1[p > 0.5] (rollouts differ through dropout only), one run
(docs/deviations.md). RL stages select the point with the best mean dev reward at the policy's
exits. Inference: exit at the first layer whose policy says P(exit) > 0.5 [1.3]. Regression:
unsupported (the memorized layer needs right/wrong exits), recorded as such. Model, reward and
rule: earlyexit/models/consistentee.py. Its paper compares it with plain multi-exit training of the
same heads and stage-1 loss (method `multiexit`, `paper_rival`)."""

from __future__ import annotations

import dataclasses

from earlyexit.methods._dynamic import DynamicMethod, Stage, forward_all, last_layer, task_loss
from earlyexit.methods.base import RunContext

# The paper's decision is the Bernoulli's mode, P(exit) > 0.5 (spec 1.3); it has no threshold sweep
# (its inference script sweeps saved checkpoints, spec 4), so the curve is one point per run.
POLICY_THRESHOLDS = (0.5,)
# variant -> (reward hardness, training actions; None: the config's action_mode)
VARIANTS = {"default": ("linear", None), "released": ("none", "threshold")}


class ConsistentEE(DynamicMethod):
    name = "consistentee"
    paper_name = "ConsistentEE"
    order = 250
    color = "#1f3b73"              # navy: CascadeBERT has tab:brown
    heads = "shared-pooler"       # earlyexit.models.multi_exit.EXIT_HEADS
    variants = tuple(VARIANTS)
    variant_labels = {"released": "ConsistentEE (as released)"}
    sweep = {"policy_threshold": POLICY_THRESHOLDS}
    train_sweep = "alpha"
    paper_rival = "multiexit"

    def train_grid(self, variant: str, settings: dict) -> tuple:
        # the released reward has no speed term: alpha does not act on it
        return () if VARIANTS[variant][0] == "none" else tuple(settings.get("alpha_grid") or ())

    def exit_support(self, task) -> str | None:
        if task.is_regression:
            return ("the memorized layer and the policy's reward need right/wrong exits; the authors "
                    "evaluate classification tasks only")
        return None

    def build(self, ctx: RunContext):
        from earlyexit.models.backbones import load_classifier
        from earlyexit.models.consistentee import ConsistentEEClassifier

        return ConsistentEEClassifier(load_classifier(ctx.backbone, ctx.task.num_labels, ctx.seed),
                                      settings(ctx)["policy_width"])

    def never_exit_setting(self, task) -> dict:
        return {"policy_threshold": 1.0}  # P(exit) > 1 never holds

    def model_rule(self, model, setting: dict, task):
        from earlyexit.models.consistentee import PolicyRule

        return PolicyRule(model, setting["policy_threshold"])

    def make_rule(self, setting: dict, task):
        raise TypeError("ConsistentEE's exit rule reads the trained policies: use model_rule(model, setting, task)")

    def stages(self, model, ctx: RunContext) -> list[Stage]:
        import torch

        from earlyexit.models.consistentee import rollout_losses, tile

        regression = ctx.task.is_regression
        s = settings(ctx)
        hardness, actions = VARIANTS[ctx.variant]
        action_mode = actions or s["action_mode"]
        copies = s["copies"]
        memorized: dict = {}     # split -> memorized layer per instance, set once stage 1 is done

        def annotate(model):
            # From stage 1's selected weights (restored before this runs, also on a resumed run).
            for name in ("train", "dev"):
                memorized[name] = memorized_layers_of(model, ctx.splits[name], ctx)

        def rl_loss(model, batch, rows, position, joint: bool):
            ids, types, mask, labels = batch
            logits, probs = model.states(tile(ids, copies), None if types is None else tile(types, copies),
                                         tile(mask, copies), detach_state=joint and s["detach_policy_state"])
            mem = tile(memorized["train"][torch.from_numpy(rows)].to(labels.device), copies)
            out = rollout_losses(logits, probs, tile(labels, copies), mem, copies, alpha=s["alpha"],
                                 hardness=hardness, action_mode=action_mode,
                                 count_final_as_continue=s["count_final_as_continue"])
            return out["policy"] + out["task"] if joint else out["policy"]

        def dev_reward(scores):
            return mean_dev_reward(model, ctx, memorized["dev"], s["alpha"], hardness)

        def rl_config(prefix: str) -> dict:
            # the authors' RL and joint stages have no warmup
            return {"warmup_ratio": 0.0, **{key: s[f"{prefix}_{key}"] for key in ("lr", "batch_size", "epochs")}}

        # stage 1 reads no RL setting: the runs of an alpha grid in one job train it once
        stages = [dataclasses.replace(multi_exit_stage(regression), independent_of=(self.train_sweep,))]
        for round_ in range(1, s["rounds"] + 1):
            stages += [
                Stage(f"policy{round_}", lambda name: name.startswith("policies."),
                      lambda m, b, r, p: rl_loss(m, b, r, p, joint=False), dev_reward, config=rl_config("rl"),
                      start=annotate if round_ == 1 else None, indexed=True, max_batches=s["rl_max_batches"]),
                Stage(f"joint{round_}", lambda name: True, lambda m, b, r, p: rl_loss(m, b, r, p, joint=True),
                      dev_reward, config=rl_config("joint"), indexed=True, max_batches=s["joint_max_batches"]),
            ]
        return stages


def multi_exit_stage(regression: bool) -> Stage:
    """Stage 1 [2.1]: every exit trained on the layer-weighted mean of the per-exit losses (PABEE's
    weighting), the policies untouched; selected on the last exit's dev score. Also the whole
    training of the paper's rival, plain multi-exit training (earlyexit/methods/multiexit.py)."""
    import torch

    from earlyexit.models.consistentee import weighted_exit_loss

    def multi_exit_loss(model, batch):
        logits = forward_all(model, batch)
        return weighted_exit_loss(torch.stack([task_loss(z, batch[3], regression) for z in logits]))

    return Stage("multi-exit", lambda name: not name.startswith("policies."), multi_exit_loss, last_layer,
                 needs_exits=False)


def settings(ctx: RunContext) -> dict:
    """The run's `dynamic.consistentee` settings over the schema's defaults (the one place for them)."""
    from earlyexit.dynamic.settings import method_settings, section

    return {**method_settings(section(), "consistentee"), **ctx.settings}


def memorized_layers_of(model, split, ctx: RunContext):
    """Memorized layer of every instance of `split` (split order) from the model's exits, in eval
    mode, every instance through every layer [2.2]."""
    import torch

    from earlyexit.training.fine_tuning import autocast
    from earlyexit.methods._dynamic import _eval_batches
    from earlyexit.models.consistentee import memorized_layers

    correct = torch.zeros(len(split), model.num_layers, dtype=torch.bool)
    labels = torch.from_numpy(split.labels)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for indices, ids, types, mask in _eval_batches(split, ctx):
            with autocast(ctx.device, ctx.train_config.autocast_bf16(ctx.device)):
                logits = model(ids, types, mask).logits
            predicted = torch.stack([z.float().argmax(-1) for z in logits], dim=1).cpu()
            rows = torch.from_numpy(indices)
            correct[rows] = predicted == labels[rows][:, None]
    model.train(was_training)
    return memorized_layers(correct)


def mean_dev_reward(model, ctx: RunContext, memorized, alpha: float, hardness: str) -> float:
    """The RL objective on dev: mean reward of the deterministic policy's exits (what RL stages select on)."""
    import torch
    import torch.nn.functional as F

    from earlyexit.training.fine_tuning import autocast
    from earlyexit.methods._dynamic import _eval_batches
    from earlyexit.models.consistentee import PolicyRule, reward

    split = ctx.splits["dev"]
    labels = torch.from_numpy(split.labels)
    total = 0.0
    for indices, ids, types, mask in _eval_batches(split, ctx):
        with autocast(ctx.device, ctx.train_config.autocast_bf16(ctx.device)):
            result = model.early_exit(ids, types, mask, PolicyRule(model))
        rows = torch.from_numpy(indices)
        loss = F.cross_entropy(result.logits.float().cpu(), labels[rows], reduction="none")
        total += float(reward(loss, torch.from_numpy(result.exit_layers), memorized[rows], model.num_layers,
                              alpha, hardness).sum())
    return total / len(split)


METHOD = ConsistentEE()
