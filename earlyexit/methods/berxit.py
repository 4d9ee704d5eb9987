"""BERxiT (Xin et al., EACL 2021; baselines-spec 2.5): DeeBERT's highways (own pooler copied from
the pretrained one, dropout, linear) after layers 1..L-1 and the model's own final head, plus ONE
learning-to-exit (LTE) module Linear(H -> 1) + sigmoid shared by all layers, reading each layer's
highway vector after its dropout and predicting whether that layer is wrong. Training,
`alternate-lte`, all parameters: even steps the final head's loss, odd steps the highways' (the
final's omitted, B8; `dynamic.berxit.odd_step_includes_final` adds it), each plus the LTE's MSE to
"this layer is wrong" (|tanh error| for regression: both BERxiT rows have STS-B cells). Inference:
exit at the first layer i < L whose LTE output is below τ; the final head answers at L.
Model, targets, losses and rule: earlyexit/models/berxit.py.

"BERxiT w/ ElasticBERT" is this method on an ElasticBERT backbone: the published row follows the
run's paper backbone."""

from __future__ import annotations

import numpy as np

from earlyexit.methods._dynamic import DynamicMethod, Stage
from earlyexit.methods.base import RunContext

# No grid is in the authors' repository (spec 2.5); τ = -1 (never exit) is the eval script's off switch.
THRESHOLDS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


class BERxiT(DynamicMethod):
    name = "berxit"
    paper_name = "BERxiT"
    order = 240
    color = "tab:purple"
    heads = "own-pooler"          # DeeBERT's highways (earlyexit.models.berxit builds them, with its LTE)
    sweep = {"lte_threshold": THRESHOLDS}

    def published_row(self, table: str, variant: str, paper_backbone: str | None = None) -> str:
        # The ELUE table has a BERxiT row for BERT and one for ElasticBERT; other backbones (RoBERTa)
        # and an unknown backbone match none.
        family = (paper_backbone or "").split("-")[0].split(" ")[0]
        return f"{self.paper_name} w/ {family}" if family in ("BERT", "ElasticBERT") else self.paper_name

    def build(self, ctx: RunContext):
        from earlyexit.models.backbones import elasticbert_layer_poolers, load_classifier
        from earlyexit.models.berxit import BERxiTClassifier

        # With ElasticBERT, its pretrained pooler of each layer starts that layer's highway (spec 2.5).
        return BERxiTClassifier(load_classifier(ctx.backbone, ctx.task.num_labels, ctx.seed),
                                elasticbert_layer_poolers(ctx.backbone))

    def never_exit_setting(self, task) -> dict:
        from earlyexit.models.berxit import NEVER_EXIT

        return {"lte_threshold": NEVER_EXIT}   # the eval script's off switch

    def model_rule(self, model, setting: dict, task):
        from earlyexit.models.berxit import LTERule

        return LTERule(model, setting["lte_threshold"])

    def make_rule(self, setting: dict, task):
        raise TypeError("BERxiT's exit rule reads the trained LTE module: use model_rule(model, setting, task)")

    def stages(self, model, ctx: RunContext) -> list[Stage]:
        regression = ctx.task.is_regression
        from earlyexit.dynamic.settings import method_settings, section

        # the run's settings over the schema's defaults (the one place for them)
        with_final = {**method_settings(section(), self.name), **ctx.settings}["odd_step_includes_final"]

        def loss(model, batch, rows, position):
            return model.alternate_loss(batch, position, regression, with_final)

        # Every exit and the LTE train together: select on the mean dev score over the exits.
        return [Stage("alternate-lte", lambda name: True, loss, lambda scores: float(np.mean(scores)), indexed=True)]


METHOD = BERxiT()
