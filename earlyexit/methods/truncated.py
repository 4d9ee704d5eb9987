"""n-layer truncation (baselines-spec 3.1): keep the backbone's first n layers, put the family's
standard classification head on top (BERT/ALBERT/ElasticBERT: the pretrained pooler, ElasticBERT's of
layer n; RoBERTa: its dense head) and fine-tune. The paper's rows are the 3-layer ones (BERT-3L,
ALBERT-3L, RoBERTa-3L, ElasticBERT-3L); ElasticBERT-nL for n = 1..12 is the ELUE score's reference
curve (hashee-spec 6.4). Which depths run on which backbone: `backbones.<name>.truncations`."""

from __future__ import annotations

import re

from earlyexit.methods._plain import run_plain
from earlyexit.methods.base import Method, RunContext, RunOutcome

MAX_LAYERS = 12          # base-size families


def depth(variant: str) -> int:
    """'3L' -> 3."""
    return int(variant[:-1])


def backbone_family(paper_backbone: str) -> str:
    """The paper's model family of a backbone: 'ElasticBERT-12L' -> 'ElasticBERT', 'BERT' -> 'BERT'."""
    return re.sub(r"-\d+L$", "", paper_backbone)


class Truncated(Method):
    name = "truncated"
    paper_name = "n-layer truncation"
    family = "static"
    order = 10
    color = "tab:gray"
    variants = tuple(f"{n}L" for n in range(1, MAX_LAYERS + 1))
    tables = ("elue_main",)
    # The paper's rows are the 3-layer ones; the other depths are reference curves (ELUE score, figure).
    table_variants = {"elue_main": ("3L",)}
    reference_curve = True          # ElasticBERT-nL: the ELUE score's reference (hashee-spec 6.4)

    def row_label(self, variant: str, paper_backbone: str, stand_in: str | None = None) -> str:
        paper_row = f"{backbone_family(paper_backbone)}-{variant}"
        # a stand-in's truncation is not the paper's row: name what ran, then the row it stands in for
        return paper_row if stand_in is None else f"{stand_in} {variant} (for {paper_row})"

    def published_row(self, table: str, variant: str, paper_backbone: str | None = None) -> str:
        return self.label(variant) if paper_backbone is None else self.row_label(variant, paper_backbone)

    def applies(self, variant: str, backbone: dict) -> bool:
        from earlyexit.models.backbones import backbone_depth

        wanted = backbone.get("truncations")
        if wanted is not None and depth(variant) not in wanted:
            return False
        layers = backbone_depth(backbone)
        return layers is None or depth(variant) <= layers

    def build(self, ctx: RunContext):
        from dataclasses import replace

        from earlyexit.models.backbones import backbone_depth, load_classifier

        n = depth(ctx.variant)
        layers = backbone_depth(dict(ctx.backbone.__dict__))
        if layers is not None and n > layers:
            raise ValueError(f"backbones.{ctx.backbone.name}: has {layers} layers, cannot keep the first {n}")
        # num_layers keeps the first n layers of the checkpoint (ElasticBERT: with layer n's pooler)
        return load_classifier(replace(ctx.backbone, num_layers=n), ctx.task.num_labels, ctx.seed)

    def run(self, ctx: RunContext) -> RunOutcome:
        return run_plain(ctx, self.build(ctx))


METHOD = Truncated()
