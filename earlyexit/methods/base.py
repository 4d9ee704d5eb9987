"""What a method declares and does; one subclass instance per module of `earlyexit.methods`.

A method says who it is (its name in configs and paths, its name in the paper, its family), what it
runs (its variants, e.g. HashEE's hash functions; the artifacts a run needs, e.g. a fitted hash; the
parameters it sweeps at inference), how it is shown (order, colour, the paper tables it has rows in)
and, in `run`, how it is built, trained and evaluated and how its cost is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# static: a fixed smaller/pruned model; token-level: per-token exits (HashEE); dynamic: per-instance
# exits decided at inference (thresholds, patience, learned exits).
FAMILIES = ("static", "token-level", "dynamic")
DEFAULT_VARIANT = "default"


@dataclass
class RunContext:
    """Everything one run (task x backbone x method x variant x seed) gets from the experiment step."""

    task: Any                       # earlyexit.data.tasks.TaskSpec
    backbone: Any                   # earlyexit.backbones.BackboneSpec
    variant: str
    seed: int
    splits: dict                    # "train" | "dev" | "test" -> earlyexit.encoded.EncodedSplit
    meta: dict                      # the tokenisation meta (pad_id, special_ids, num_layers, ...)
    artifacts: dict                 # artifact name -> path (as declared by Method.artifacts)
    train_config: Any               # earlyexit.training.TrainConfig
    device: Any                     # torch.device
    checkpoint: str | None = None   # save the selected weights here, when set
    train_state: Any = None         # earlyexit.train_state.StateFile: train resumably there, when set
    progress: bool = True


@dataclass
class RunOutcome:
    """What `Method.run` returns; the experiment step turns it into the run record.

    Cost, per test instance in test order: `method_flops` (exact FLOPs of what the method ran),
    `elue_depth` (the number of layers the ELUE protocol is told, spec 6.3) and `tokens` (real
    tokens). `dims` are the model dimensions the FLOPs were counted with.
    """

    dev: dict
    test: dict
    best_on_test: dict | None
    selected_step: int
    history: list
    train_seconds: float
    eval_seconds: float
    method_flops: np.ndarray
    elue_depth: np.ndarray
    tokens: np.ndarray
    dims: Any                       # earlyexit.flops.ModelDims
    extra: dict = field(default_factory=dict)   # method-specific record fields


class Method:
    name: str                       # in configs, wildcards and paths
    paper_name: str                 # as the paper writes it
    family: str                     # one of FAMILIES
    order: int                      # position in tables and legends
    color: str                      # matplotlib colour of its points and curves
    variants: tuple = (DEFAULT_VARIANT,)
    variant_labels: dict = {}       # variant -> label as the paper writes it
    variant_colors: dict = {}       # variant -> colour where variants share a figure (else `color`)
    sweep: dict = {}                # inference-time parameter -> values scored on one trained model
    tables: tuple = ()              # paper tables (data/published table names) it has rows in
    table_variants: dict = {}       # table -> the variants with rows in it (absent: every variant)
    reference: bool = False         # the no-exit model every other row is compared with
    needs_hub: bool = False         # loads its own hub checkpoint: no run where requirements.network is false

    def row_label(self, variant: str, paper_backbone: str) -> str:
        """The run's row label; the same as `label` unless the name depends on the backbone
        (e.g. "BERT-3L" for the 3-layer truncation of the BERT backbone)."""
        return self.label(variant)

    def applies(self, variant: str, backbone: dict) -> bool:
        """Whether `variant` runs on `backbone` (its config entry); e.g. a truncation no deeper than it."""
        return True

    def label(self, variant: str) -> str:
        """The row label: the variant's paper name, or the method's when it has one variant."""
        if variant == DEFAULT_VARIANT or len(self.variants) == 1:
            return self.paper_name
        return self.variant_labels.get(variant, variant)

    def published_row(self, table: str, variant: str, paper_backbone: str | None = None) -> str:
        """This run's row name in data/published/hashee_published.csv's `table`."""
        return self.label(variant)

    def artifacts(self, variant: str, seed: int) -> dict:
        """Artifacts a run needs: input name -> {"kind": ..., **keys}; the workflow maps them to
        files (see workflow/rules/common.smk). None by default."""
        return {}

    def run(self, ctx: RunContext) -> RunOutcome:
        raise NotImplementedError

    def check(self) -> None:
        """Registration-time sanity: a malformed method fails the import, naming itself."""
        for attribute in ("name", "paper_name", "family", "order", "color"):
            if not hasattr(self, attribute):
                raise ImportError(f"method {type(self).__name__}: missing attribute {attribute!r}")
        if self.family not in FAMILIES:
            raise ImportError(f"method {self.name}: family {self.family!r} is not one of {FAMILIES}")
        if not self.variants or len(set(self.variants)) != len(self.variants):
            raise ImportError(f"method {self.name}: variants must be distinct and non-empty")
