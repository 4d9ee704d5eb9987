"""A static baseline that is its own pretrained checkpoint on the HF hub (DistilBERT, TinyBERT):
loaded by hub id, fine-tuned on the one loop like every other row. It reads the tokenisation of a
backbone with the same vocabulary (`tokenizer_hub_id`) and cannot run offline (`needs_hub`)."""

from __future__ import annotations

from earlyexit.methods._plain import run_plain
from earlyexit.methods.base import Method, RunContext, RunOutcome


class HubCheckpointMethod(Method):
    family = "static"
    needs_hub = True
    checkpoint: str              # hub id (or local folder) of the pretrained model
    revision: str | None = None
    tokenizer_hub_id = "bert-base-uncased"   # the backbone whose tokenisation the checkpoint reads
    tables = ("elue_main",)

    def applies(self, variant: str, backbone: dict) -> bool:
        return backbone.get("source") == "hub" and backbone.get("hub_id") == self.tokenizer_hub_id

    def pretrained(self, num_labels: int):
        """The hub checkpoint with a new classification head of `num_labels` outputs."""
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(self.checkpoint, revision=self.revision,
                                                                  num_labels=num_labels)

    def build(self, ctx: RunContext):
        import torch

        from earlyexit.models.fast_linear import install_fast_linears

        torch.manual_seed(ctx.seed)     # the new classification head
        # the backbone's fast linear path, as every model of the suite has it (load_classifier)
        return install_fast_linears(self.pretrained(ctx.task.num_labels))

    def run(self, ctx: RunContext) -> RunOutcome:
        return run_plain(ctx, self.build(ctx))
