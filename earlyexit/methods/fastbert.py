"""FastBERT (Liu et al., ACL 2020; baselines-spec 2.2): a FastBERT classifier (Linear(H, 128) +
tanh, 2-head self-attention of width 128, position 0, two linears) after every layer; the last is
the teacher. Stage 1 fine-tunes the backbone and the teacher on CE; stage 2 (self-distillation)
trains only the students 1..L-1 on sum_i KL(p_teacher || p_i), no labels, with the backbone and
teacher frozen but in train mode (the teacher's targets see dropout, as in the authors' code, B5),
at 10x the learning rate, with the schedule sized to the distillation epochs (the pip version's
behaviour; B3). Exit at the first layer whose normalised entropy H / ln C is below `speed`.
Regression: unsupported ("–"). The classifiers' FLOPs are reported beside the protocol's (1.3)."""

from __future__ import annotations

import numpy as np

from earlyexit.methods._dynamic import DynamicMethod, Stage, exit_names, forward_all, forward_last, last_layer, mean_of_exits, task_loss
from earlyexit.methods.base import RunContext

SPEEDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def distillation_loss(logits: list):
    """sum over students of KL(p_teacher || p_student), averaged over the batch."""
    import torch.nn.functional as F

    teacher = F.softmax(logits[-1].detach().float(), dim=-1)
    return sum(F.kl_div(F.log_softmax(z.float(), dim=-1), teacher, reduction="batchmean") for z in logits[:-1])


class FastBERT(DynamicMethod):
    name = "fastbert"
    paper_name = "FastBERT"
    order = 210
    color = "tab:orange"
    heads = "attention"           # earlyexit.models.multi_exit.EXIT_HEADS
    sweep = {"speed": SPEEDS}

    def build(self, ctx: RunContext):
        from earlyexit.models.backbones import load_classifier
        from earlyexit.models.multi_exit import MultiExitClassifier, attention_exits

        hf = load_classifier(ctx.backbone, ctx.task.num_labels, ctx.seed)
        return MultiExitClassifier(hf, attention_exits(hf, width=ctx.settings["classifier_width"]))

    def exit_support(self, task) -> str | None:
        if task.is_regression:
            return "normalised-entropy exit and self-distillation need class distributions (ln C = 0 for one output)"
        return None

    def never_exit_setting(self, task) -> dict:
        return {"speed": 0.0}             # H / ln C < 0 never holds

    def make_rule(self, setting: dict, task):
        from earlyexit.dynamic.exit_rules import NormalizedEntropyRule

        return NormalizedEntropyRule(setting["speed"])

    def stages(self, model, ctx: RunContext) -> list[Stage]:
        students = exit_names(model, range(1, model.num_layers))
        regression = ctx.task.is_regression
        settings = ctx.settings

        def teacher_loss(model, batch):
            return task_loss(forward_last(model, batch), batch[3], regression)

        def student_loss(model, batch):
            return distillation_loss(forward_all(model, batch))

        distill = {"lr": ctx.train_config.lr * settings["distill_lr_multiplier"]}
        if settings["distill_epochs"] is not None:
            distill["epochs"] = settings["distill_epochs"]
        return [Stage("final", lambda name: not students(name), teacher_loss, last_layer, needs_exits=False),
                Stage("distill", students, student_loss, mean_of_exits, config=distill)]

    def extra_record(self, model, ctx: RunContext, tokens: np.ndarray, exit_layers: np.ndarray) -> dict:
        from earlyexit.cost.flops import ModelDims, fastbert_classifier_flops

        dims = ModelDims.from_hf_config(model.hf.config)
        width = model.exits[0].width
        per_instance = [e * fastbert_classifier_flops(int(n), dims, width) for n, e in zip(tokens, exit_layers)]
        return {"exit_classifier_flops_per_instance": float(np.mean(per_instance)),
                "exit_classifier_flops_note": "FastBERT's classifiers at every layer run, exact matmul FLOPs; "
                                              "not in the ELUE protocol's count (baselines-spec 1.3)"}


METHOD = FastBERT()
