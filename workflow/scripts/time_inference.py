"""Snakemake wrapper, rule time_inference: one task x backbone -> its timing record."""

import torch

from earlyexit.models.backbones import BackboneSpec
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job
from earlyexit.cost.timing import run_timing
from earlyexit.training.loop import TrainConfig

check_job(snakemake, snakemake.params.backbone)  # this node: a GPU if the rule asked for one, the hub if it downloads
torch.set_num_threads(snakemake.threads)
backbone, timing = snakemake.params.backbone, snakemake.params.timing
run_step(
    snakemake.log[0],
    run_timing,
    preset=snakemake.params.preset,
    task_name=snakemake.wildcards.task,
    tokenized=snakemake.input.npz,
    tokenized_meta=snakemake.input.meta,
    backbone=BackboneSpec.from_config(snakemake.wildcards.backbone, backbone),
    seed=int(snakemake.params.seed),
    cases=list(snakemake.params.cases),
    train_config=TrainConfig.from_config(dict(snakemake.params.training)),
    method_settings=dict(snakemake.params.method_settings),
    reference_layers=backbone["reference_layers"],
    batch_sizes=list(timing["batch_sizes"]),
    warmup=timing["warmup"],
    repeats=timing["repeats"],
    out_json=snakemake.output.timing,
    device=snakemake.params.device,
    dtype=timing["dtype"],
)
