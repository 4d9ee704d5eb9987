"""BERT-of-Theseus (Xu et al., EMNLP 2020; baselines-spec 3.5): the fine-tuned full model (the
predecessor, artifact: the full run on the same task x backbone x seed) compressed to half its depth
(12 -> 6 layers; 6 -> 3 on 6-layer backbones) by progressive module replacement
(earlyexit.models.theseus), trained on the one loop: the replacement rate follows the step through
the loop's before_step hook, so a resumed run continues the schedule where it stopped.

Variants: default, the linear schedule p_t = min(1, 0.3 + 0.0006 t) (the README's); constant,
p = 0.5 for 2,500 steps, then 1. The preset's training settings are used (the authors': lr 2e-5,
15 epochs, no warmup). Dev selection and test run the successor alone; it is what is counted
(its depth, every token through every layer) and what the run saves.
"""

from __future__ import annotations

from earlyexit.methods._from_full import full_model_artifact
from earlyexit.methods.base import DEFAULT_VARIANT, Method, RunContext, RunOutcome
from earlyexit.models.replacement import ConstantReplacement, LinearReplacement

SCHEDULES = {DEFAULT_VARIANT: LinearReplacement(), "constant": ConstantReplacement()}


class Theseus(Method):
    name = "theseus"
    paper_name = "BERT-of-Theseus"
    family = "static"
    order = 23
    color = "#6a3d9a"
    variants = tuple(SCHEDULES)
    variant_labels = {"constant": "BERT-of-Theseus (constant rate)"}
    tables = ("elue_main",)

    def artifacts(self, variant: str, seed: int) -> dict:
        return full_model_artifact(seed)

    def run(self, ctx: RunContext) -> RunOutcome:
        from earlyexit.training.fine_tuning import fine_tune
        from earlyexit.cost.flops import ModelDims
        from earlyexit.methods._from_full import attach_full_depth, load_full_model, save_weights, static_cost
        from earlyexit.models.theseus import TheseusClassifier

        hf = load_full_model(ctx)
        depth = hf.config.num_hidden_layers
        if depth % 2:
            raise ValueError(f"backbones.{ctx.backbone.name}: BERT-of-Theseus halves the depth, "
                             f"{depth} layers is odd")
        model = TheseusClassifier(hf, depth // 2).to(ctx.device)
        attach_full_depth(ctx, model.num_layers)
        schedule = SCHEDULES[ctx.variant]

        def set_rate(step: int) -> None:
            model.replace_prob = schedule(step)

        result = fine_tune(model, ctx.splits["train"], ctx.splits["dev"], ctx.splits["test"],
                           metric=ctx.task.metric, regression=ctx.task.is_regression, cfg=ctx.train_config,
                           seed=ctx.seed, pad_id=ctx.meta["pad_id"], device=ctx.device, progress=ctx.progress,
                           state=ctx.train_state, before_step=set_rate)
        successor = model.successor_model()
        save_weights(ctx, successor)
        # the record's dims are the backbone's (the reference of its speed-ups); the cost is the successor's
        dims = ModelDims.from_hf_config(hf.config)
        tokens, flops, elue_depth = static_cost(ctx.splits["test"].lengths, ModelDims.from_hf_config(successor.config))
        return RunOutcome.from_fine_tune(
            result, method_flops=flops, elue_depth=elue_depth, tokens=tokens, dims=dims,
            extra={"mean_exit_layer": float(successor.config.num_hidden_layers), "theseus": {
                "predecessor_layers": depth, "successor_layers": successor.config.num_hidden_layers,
                "schedule": ctx.variant,
                "replace_prob_at_selected": schedule(max(0, result["selected_step"] - 1))}},
        )


METHOD = Theseus()
