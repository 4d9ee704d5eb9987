"""The full decoder LM: every generated token through every layer and the model's own head (the
base LM the exits were added to; released mode 4). Every LLM speed-up divides by its FLOPs."""

from __future__ import annotations

from earlyexit.methods.base import LLMRunContext, Method


class FullLLM(Method):
    name = "full_llm"
    paper_name = "Full model"
    family = "static"
    order = 5
    color = "#444444"
    tables = ("llm_early_exit",)
    generation_lm = True

    def run_llm(self, ctx: LLMRunContext) -> list[dict]:
        return [ctx.score("none", None, {}, own_head=True)]


METHOD = FullLLM()
