"""Snakemake wrapper, rule sweep_exits: one dynamic run's checkpoint -> its sweep file."""

import torch

from analysis.published import load_published
from earlyexit.backbones import BackboneSpec
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job
from earlyexit.sweeps import run_sweep
from earlyexit.training import TrainConfig

check_job(snakemake, snakemake.params.backbone)
torch.set_num_threads(snakemake.threads)
backbone = snakemake.params.backbone
run_step(
    snakemake.log[0],
    run_sweep,
    preset=snakemake.params.preset,
    task_name=snakemake.wildcards.task,
    tokenized=snakemake.input.npz,
    tokenized_meta=snakemake.input.meta,
    backbone=BackboneSpec.from_config(snakemake.wildcards.backbone, backbone),
    method=snakemake.wildcards.method,
    variant=snakemake.wildcards.variant,
    seed=int(snakemake.wildcards.seed),
    checkpoint=snakemake.input.model,
    train_config=TrainConfig.from_config(dict(snakemake.params.training)),
    reference_layers=backbone["reference_layers"],
    default_target=snakemake.params.target_speedup,
    published=load_published(snakemake.input.published),
    out_json=snakemake.output.sweep,
    device=snakemake.params.device,
    method_settings=dict(snakemake.params.method_settings),
)
