"""CALM (Schuster et al., 2022) on the shared multi-exit LM: a generated token leaves at the first
layer whose LM head's softmax confidence (top-1 minus top-2 probability) reaches the threshold,
and its state is propagated to the skipped layers (their K/V computed from it). Nothing to train
beyond the shared per-layer heads; the threshold is swept at inference (`sweep`)."""

from __future__ import annotations

from earlyexit.methods.base import LLMRunContext, Method


class CALM(Method):
    name = "calm"
    paper_name = "CALM"
    family = "token-level"
    order = 260
    color = "#e6ab02"
    sweep = {"threshold": (0.9, 0.8, 0.6, 0.4, 0.2, 0.1)}
    tables = ("llm_early_exit",)
    generation_lm = True

    def run_llm(self, ctx: LLMRunContext) -> list[dict]:
        thresholds = ctx.settings["calm"]["thresholds"] or self.sweep["threshold"]
        return [ctx.score("confidence", ctx.model.confidence_rule(t), {"threshold": t}) for t in thresholds]


METHOD = CALM()
