"""DeeBERT (Xin et al., ACL 2020; baselines-spec 2.1): a highway classifier (own pooler copied from
the pretrained one, dropout, linear) after every layer but the last; exit when the softmax entropy
is below S. Two stages: (1) ordinary fine-tuning of the backbone and final head, highways frozen;
(2) the highways alone (backbone and final head frozen), on the unweighted sum of their CEs, with a
fresh optimizer. The final head always answers at layer L (spec B1: DeeBERT's untrained last
highway is not used). Regression: entropy of one logit is 0, so no STS-B cell ("–")."""

from __future__ import annotations

from earlyexit.methods._dynamic import DynamicMethod, Stage, exit_names, forward_all, forward_last, last_layer, mean_of_exits, task_loss
from earlyexit.methods.base import RunContext

THRESHOLDS = (0.0, 0.001, 0.005, 0.01, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
# Three classes: the entropy reaches ln 3 = 1.10, so the authors' grid is extended for SNLI.
THREE_CLASS_EXTRA = (0.8, 0.9, 1.0)


class DeeBERT(DynamicMethod):
    name = "deebert"
    paper_name = "DeeBERT"
    order = 200
    color = "tab:blue"
    heads = "own-pooler"          # earlyexit.models.multi_exit.EXIT_HEADS
    sweep = {"entropy": THRESHOLDS}

    def exit_support(self, task) -> str | None:
        if task.is_regression:
            return "entropy exit is undefined for regression (one logit: entropy 0, every instance would leave at layer 1)"
        return None

    def sweep_settings(self, task) -> list[dict]:
        extra = THREE_CLASS_EXTRA if task.num_labels >= 3 else ()
        return [{"entropy": s} for s in (*THRESHOLDS, *extra)]

    def never_exit_setting(self, task) -> dict:
        return {"entropy": 0.0}           # H < 0 never holds

    def make_rule(self, setting: dict, task):
        from earlyexit.dynamic.exit_rules import EntropyRule

        return EntropyRule(setting["entropy"])

    def stages(self, model, ctx: RunContext) -> list[Stage]:
        highways = exit_names(model, range(1, model.num_layers))
        regression = ctx.task.is_regression
        settings = ctx.settings

        def final_loss(model, batch):
            return task_loss(forward_last(model, batch), batch[3], regression)

        def highway_loss(model, batch):
            logits = forward_all(model, batch)
            return sum(task_loss(z, batch[3], regression) for z in logits[:-1])

        exit_config = {k: settings[f"exit_{k}"] for k in ("epochs", "lr") if settings.get(f"exit_{k}") is not None}
        return [Stage("final", lambda name: not highways(name), final_loss, last_layer, needs_exits=False),
                Stage("exits", highways, highway_loss, mean_of_exits, config=exit_config)]


METHOD = DeeBERT()
