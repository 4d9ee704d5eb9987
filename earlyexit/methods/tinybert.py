"""TinyBERT (Jiao et al., 2020; baselines-spec 3.3): the 6-layer, 768-wide general-distillation
checkpoint fine-tuned on the task through the one loop (the spec's `tinybert_mode: finetune`; its task
distillation is not run, docs/deviations.md). Needs the hub; offline presets show "needs hub"."""

from __future__ import annotations

from earlyexit.methods._hub_checkpoint import HubCheckpointMethod


class TinyBERT(HubCheckpointMethod):
    name = "tinybert"
    paper_name = "TinyBERT"
    order = 21
    color = "tab:cyan"
    checkpoint = "huawei-noah/TinyBERT_General_6L_768D"

    def pretrained(self, num_labels: int):
        # a BertModel checkpoint (its extra fit_dense weights from distillation are not loaded)
        from transformers import BertForSequenceClassification

        return BertForSequenceClassification.from_pretrained(self.checkpoint, revision=self.revision,
                                                             num_labels=num_labels)


METHOD = TinyBERT()
