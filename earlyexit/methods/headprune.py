"""HeadPrune (Michel et al., NeurIPS 2019, "Are sixteen heads really better than one?";
baselines-spec 3.4): attention heads of the fine-tuned full model removed, least important first.

1. Start from the full model's selected weights (artifact: its run on the same task x backbone x seed).
2. Score each head on the training data, in eval mode, by |dL/dxi| of a gate xi on the head
   (per token, the authors' code), divided by the number of tokens and normalised per layer.
3. Remove heads in cumulative steps of 5% of all heads, scores computed once (no --exact_pruning),
   until the ELUE counter's speed-up over the unpruned model, on the dev lengths, reaches the target:
   the published cells' 1.3x for SST-2 and 1.5x elsewhere. Each step is scored on dev with the heads
   masked (the pruning curve, in the record); the last step's heads are removed physically.
4. Retraining, the spec's choice for the open question A4: the pruned model is fine-tuned for one
   epoch (always; the other settings are the run's: `training`, or `method_training.headprune`, lr
   2e-5 on the paper preset) on the one loop, dev-selected; the score without retraining is in the
   record too (`headprune.no_retrain`).
Cost: the pruned model's exact FLOPs with its per-layer head counts; ELUE protocol depth = the depth
whose full-width counter gives the pruned model's MACs (flops.elue_equivalent_depth).
"""

from __future__ import annotations

import dataclasses

from earlyexit.methods._from_full import full_model_artifact
from earlyexit.methods.base import Method, RunContext, RunOutcome

TARGET_SPEEDUP = {"SST-2": 1.3}       # by the task's paper name; the published HeadPrune cells
DEFAULT_TARGET_SPEEDUP = 1.5
STEP_FRACTION = 0.05                  # heads_pruning.sh: 5%, 10%, ... of all heads
IMPORTANCE_ABS = "per_token"          # the authors' code; "per_batch" is HF's port
RETRAIN_EPOCHS = 1


def target_speedup(paper_task: str) -> float:
    return TARGET_SPEEDUP.get(paper_task, DEFAULT_TARGET_SPEEDUP)


class HeadPrune(Method):
    name = "headprune"
    paper_name = "HeadPrune"
    family = "static"
    order = 22
    color = "tab:pink"
    tables = ("elue_main",)

    def artifacts(self, variant: str, seed: int) -> dict:
        return full_model_artifact(seed)

    def run(self, ctx: RunContext) -> RunOutcome:
        from earlyexit.training.fine_tuning import evaluate, fine_tune
        from earlyexit.cost.flops import ModelDims
        from earlyexit.training.head_pruning import head_importance, pruning_plan
        from earlyexit.methods._from_full import attach_full_depth, load_full_model, save_weights, static_cost
        from earlyexit.models.encoder_classifier import EncoderClassifier
        from earlyexit.models.head_gates import HeadGates, prune_heads

        cfg, task, pad_id, device = ctx.train_config, ctx.task, ctx.meta["pad_id"], ctx.device
        hf = load_full_model(ctx)
        model = EncoderClassifier(hf).to(device)
        attach_full_depth(ctx, model.num_layers)
        train, dev, test = ctx.splits["train"], ctx.splits["dev"], ctx.splits["test"]

        def score(split) -> dict:
            return evaluate(model, split, task.metric, cfg, pad_id, device, task.is_regression)

        dims = ModelDims.from_hf_config(hf.config)
        importance = head_importance(model, train, pad_id=pad_id, regression=task.is_regression, device=device,
                                     batch_size=cfg.eval_batch_size, absolute=IMPORTANCE_ABS)
        target = target_speedup(task.paper_task)
        plan = pruning_plan(importance, dims, dev.lengths, target, STEP_FRACTION)
        curve = []
        with HeadGates(hf) as gates:
            for step in plan:
                gates.set_mask(step.keep)
                curve.append({"removed": step.removed, "fraction": step.fraction, "speedup": step.speedup,
                              "dev": score(dev)["score"]})
        final = plan[-1]
        layer_heads = prune_heads(hf, final.keep)
        no_retrain = {"dev": score(dev), "test": score(test)}

        result = fine_tune(model, train, dev, test, metric=task.metric, regression=task.is_regression,
                           cfg=dataclasses.replace(cfg, epochs=RETRAIN_EPOCHS), seed=ctx.seed, pad_id=pad_id,
                           device=device, progress=ctx.progress, state=ctx.train_state)
        save_weights(ctx, hf)
        pruned = ModelDims.from_hf_config(hf.config, layer_heads)
        tokens, flops, depth = static_cost(test.lengths, pruned)
        return RunOutcome.from_fine_tune(
            result, method_flops=flops, elue_depth=depth, tokens=tokens, dims=dims,   # the backbone, with every head
            extra={"mean_exit_layer": float(dims.num_layers), "headprune": {
                "target_speedup": target, "reached": final.speedup >= target,
                "heads_removed": final.removed, "heads_total": int(importance.size),
                "layer_heads": layer_heads, "kept": final.keep, "importance": importance.tolist(),
                "importance_abs": IMPORTANCE_ABS, "retrain_epochs": RETRAIN_EPOCHS,
                "no_retrain": no_retrain, "curve": curve}},
        )


METHOD = HeadPrune()
