"""PABEE (Zhou et al., NeurIPS 2020; baselines-spec 2.3): a linear head on the shared pretrained
pooler after every layer, trained jointly on the layer-weighted mean of the per-layer losses
(weights 1..L); at inference an instance leaves once `patience` consecutive layers agree with the
layer before them (regression: |y_i - y_{i-1}| < tau, the regression threshold)."""

from __future__ import annotations

from earlyexit.methods._dynamic import DynamicMethod, Stage, forward_all, last_layer, task_loss
from earlyexit.methods.base import RunContext

PATIENCES = tuple(range(1, 12))
# STS-B: the ElasticBERT patience script's tau = 0.94 and a small grid around it (spec 2.3).
REGRESSION_THRESHOLDS = (0.94, 0.5, 0.25, 0.1)


class PABEE(DynamicMethod):
    name = "pabee"
    paper_name = "PABEE"
    order = 220
    color = "tab:green"
    heads = "shared-pooler"       # earlyexit.models.multi_exit.EXIT_HEADS
    sweep = {"patience": PATIENCES}

    def sweep_settings(self, task) -> list[dict]:
        if task.is_regression:
            return [{"patience": t, "regression_threshold": tau} for tau in REGRESSION_THRESHOLDS for t in PATIENCES]
        return super().sweep_settings(task)

    def never_exit_setting(self, task) -> dict:
        return {"patience": 0}            # patience 0: the counter never triggers

    def make_rule(self, setting: dict, task):
        from earlyexit.dynamic.exit_rules import PatienceRule

        return PatienceRule(setting["patience"], setting.get("regression_threshold", 0.0))

    def stages(self, model, ctx: RunContext) -> list[Stage]:
        regression = ctx.task.is_regression

        def weighted_loss(model, batch):
            logits = forward_all(model, batch)
            total = sum(i * task_loss(z, batch[3], regression) for i, z in enumerate(logits, start=1))
            return total / (len(logits) * (len(logits) + 1) / 2)

        return [Stage("joint", lambda name: True, weighted_loss, last_layer)]


METHOD = PABEE()
