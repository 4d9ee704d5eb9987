"""Static truncation of the decoder LM: the first n layers (prompt included), the final norm and the
LM head of layer n (trained with the other exits in the shared stage), for every n of
llm_generation.truncation.depths (null: every n below the full depth)."""

from __future__ import annotations

from earlyexit.methods.base import LLMRunContext, Method


class TruncatedLLM(Method):
    name = "truncated_llm"
    paper_name = "First n layers"
    family = "static"
    order = 15
    color = "#8c8c8c"
    tables = ("llm_early_exit",)
    generation_lm = True

    def run_llm(self, ctx: LLMRunContext) -> list[dict]:
        L = ctx.model.num_layers
        depths = ctx.settings["truncation"]["depths"] or list(range(1, L))
        bad = [n for n in depths if not 1 <= n < L]
        if bad:
            raise ValueError(f"config key 'llm_generation.truncation.depths': {bad[0]} is not in 1..{L - 1}")
        return [ctx.score("none", None, {"layers": n}, depth=n) for n in depths]


METHOD = TruncatedLLM()
