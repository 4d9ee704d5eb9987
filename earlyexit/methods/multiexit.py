"""Plain multi-exit training: the rival ConsistentEE's paper compares it with at equal speed-up
(issue 16 section 2; consistentee-spec 2.1). The same model and heads as ConsistentEE (one shared
pooler, a linear head per layer; its policies are built, for an identical initialisation, and never
trained or read) trained by ConsistentEE's stage 1 alone, the layer-weighted mean of the per-exit
losses (PABEE's weighting). No RL: at inference an instance leaves by a hand-set rule, swept on the
one trained model over both kinds the issue names:
- patience (PABEE): `patience` consecutive layers agree with the layer before them (regression:
  |y_i - y_{i-1}| < tau);
- confidence: the normalised entropy H / ln C of the exit's softmax below a threshold (FastBERT's
  rule; classification only).
Both kinds are points of one curve: the comparison is at equal speed-up, whichever rule gets there.
"""

from __future__ import annotations

from earlyexit.methods._dynamic import DynamicMethod, Stage
from earlyexit.methods.base import RunContext

PATIENCES = (1, 2, 3, 4, 5, 6, 8, 11)
UNCERTAINTIES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)
# STS-B: PABEE's regression threshold (the ElasticBERT script's 0.94) at every patience
REGRESSION_THRESHOLD = 0.94


class MultiExit(DynamicMethod):
    name = "multiexit"
    paper_name = "Multi-exit (weighted)"
    order = 251                    # beside ConsistentEE
    color = "#7f7f7f"              # grey: the plain rival
    heads = "shared-pooler"       # earlyexit.models.multi_exit.EXIT_HEADS
    sweep = {"patience": PATIENCES, "uncertainty": UNCERTAINTIES}

    def sweep_settings(self, task) -> list[dict]:
        if task.is_regression:
            return [{"patience": p, "regression_threshold": REGRESSION_THRESHOLD} for p in PATIENCES]
        return [{"patience": p} for p in PATIENCES] + [{"uncertainty": u} for u in UNCERTAINTIES]

    def build(self, ctx: RunContext):
        from earlyexit.methods.consistentee import METHOD as CONSISTENTEE

        return CONSISTENTEE.build(ctx)

    def never_exit_setting(self, task) -> dict:
        return {"patience": 0}            # patience 0: the counter never triggers

    def make_rule(self, setting: dict, task):
        from earlyexit.dynamic.exit_rules import NormalizedEntropyRule, PatienceRule

        if "uncertainty" in setting:
            return NormalizedEntropyRule(setting["uncertainty"])
        return PatienceRule(setting["patience"], setting.get("regression_threshold", 0.0))

    def stages(self, model, ctx: RunContext) -> list[Stage]:
        from earlyexit.methods.consistentee import multi_exit_stage

        return [multi_exit_stage(ctx.task.is_regression)]


METHOD = MultiExit()
