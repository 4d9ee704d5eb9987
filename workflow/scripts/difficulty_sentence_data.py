"""Snakemake wrapper: build the model-defined sentence-level dataset (annotate, or the released files)."""

from difficulty.steps import build_sentence_dataset
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job

check_job(snakemake, snakemake.params.data, snakemake.params.backbone)  # this node: a GPU if the rule asked for one, the hub if it downloads
run_step(
    snakemake.log[0],
    build_sentence_dataset,
    data=snakemake.params.data,
    backbone=snakemake.params.backbone,
    annotator=snakemake.params.annotator,
    val_fraction=snakemake.params.val_fraction,
    device=snakemake.params.device,
    out_train=snakemake.output.train,
    out_test=snakemake.output.test,
    out_counts=snakemake.output.counts,
    threads=snakemake.threads,
)
