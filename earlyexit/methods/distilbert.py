"""DistilBERT (Sanh et al., 2019; baselines-spec 3.2): the distilbert-base-uncased checkpoint (6
layers, 768 wide, no segment embeddings, pre-classifier + ReLU head on [CLS]) fine-tuned on the task,
without task-time distillation. Needs the hub; offline presets show "needs hub" in its row."""

from __future__ import annotations

from earlyexit.methods._hub_checkpoint import HubCheckpointMethod


class DistilBERT(HubCheckpointMethod):
    name = "distilbert"
    paper_name = "DistilBERT"
    order = 20
    color = "tab:olive"
    checkpoint = "distilbert-base-uncased"


METHOD = DistilBERT()
