"""The full model: the backbone fine-tuned without exiting, the reference row of every table."""

from __future__ import annotations

from earlyexit.methods._token_exit import TokenExitMethod, run_token_exit
from earlyexit.methods.base import RunContext, RunOutcome


class FullModel(TokenExitMethod):
    name = "full"
    paper_name = "Full (no exit)"
    family = "static"
    order = 0
    color = "black"
    tables = ("hash_functions", "summarization")
    reference = True

    def run(self, ctx: RunContext) -> RunOutcome:
        return run_token_exit(ctx, token_hash=None)


METHOD = FullModel()
