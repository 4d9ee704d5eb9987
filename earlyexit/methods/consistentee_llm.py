"""ConsistentEE for generation (Zeng et al., 2024; consistentee-spec section 8): per-token policies
on the shared multi-exit LM, trained by policy-only REINFORCE (released mode 2) then jointly with CE
at each token's exit (mode 3); at inference each generated token leaves at the first layer whose
policy says P(exit) > 0.5 and fills the skipped layers' K/V from its exit state (released mode 6).

Variants are the reward: `hardness` (the paper's, -CE - alpha (1 - m/L) e with the token's memorized
layer m; the suite's default) and `released` (the released LLM code's -CE - alpha e)."""

from __future__ import annotations

from earlyexit.methods.base import LLMRunContext, Method


class ConsistentEELLM(Method):
    name = "consistentee_llm"
    paper_name = "ConsistentEE"
    family = "token-level"
    order = 270
    color = "#3366cc"
    variants = ("hardness", "released")
    variant_labels = {"hardness": "ConsistentEE", "released": "ConsistentEE (released reward)"}
    variant_colors = {"hardness": "#3366cc", "released": "#7fa7e6"}
    tables = ("llm_early_exit",)
    paper_rival = "calm"           # the LLM comparison of the paper: CALM at the same speed-up
    generation_lm = True

    def run_llm(self, ctx: LLMRunContext) -> list[dict]:
        from earlyexit.generation.llm_training import run_stage, stage_config

        own = ctx.settings["consistentee"]
        reward = {"reward": "hardness" if ctx.variant == "hardness" else "released",
                  "alpha": own["alpha"] if ctx.variant == "hardness" else own["released_alpha"],
                  "copies": own["copies"], "action": own["action"], "expert_copies": own["expert_copies"]}
        history = {}
        for stage in ("policy", "joint"):
            cfg = stage_config(ctx.settings["stages"][stage], ctx.settings["max_prompt_len"] + ctx.settings["max_target_len"])
            result = run_stage(ctx.model, stage, ctx.splits, cfg, seed=ctx.seed, pad_id=ctx.tokenizer.pad_id,
                               device=ctx.device, settings=reward, memorized=ctx.memorized,
                               state=ctx.state.stage(f"{stage}") if ctx.state else None, progress=ctx.progress,
                               lora=ctx.settings["lora"] if ctx.settings["lora"]["enabled"] else None,
                               micro_batch_size=ctx.settings["stages"][stage]["micro_batch_size"])
            history[stage] = {"history": result["history"], "selected_step": result["selected"]["step"],
                              "train_seconds": result["train_seconds"]}
        point = ctx.score("policy", ctx.model.policy_rule(), {"p_exit": 0.5})
        return [{**point, "training": history}]


METHOD = ConsistentEELLM()
