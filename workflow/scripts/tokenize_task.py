"""Snakemake wrapper: tokenise one task's splits for one backbone."""

from pathlib import Path

from earlyexit.models.backbones import BackboneSpec
from earlyexit.runs.experiment import tokenize_task
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job

check_job(snakemake, snakemake.params.backbone)  # this node: a GPU if the rule asked for one, the hub if it downloads
run_step(
    snakemake.log[0],
    tokenize_task,
    task_name=snakemake.wildcards.task,
    split_dir=Path(snakemake.input.train).parent,
    backbone=BackboneSpec.from_config(snakemake.wildcards.backbone, snakemake.params.backbone),
    max_seq_len=snakemake.params.max_seq_len,
    out_npz=snakemake.output.npz,
    out_meta=snakemake.output.meta,
    max_target_len=snakemake.params.max_target_len,
)
