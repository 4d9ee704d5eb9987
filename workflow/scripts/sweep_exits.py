"""Snakemake wrapper, rule sweep_exits: each dynamic run's checkpoint of the job (one, or a method's
variants x seeds) -> its sweep file."""

import torch

from earlyexit.backbones import BackboneSpec
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job
from earlyexit.sweeps import run_sweep
from earlyexit.training import TrainConfig

check_job(snakemake, snakemake.params.backbone)
torch.set_num_threads(snakemake.threads)
backbone = snakemake.params.backbone


def sweep_all():
    for run, model, out in zip(snakemake.params.runs, snakemake.input.model, snakemake.output.sweep, strict=True):
        run_sweep(
            preset=snakemake.params.preset,
            task_name=snakemake.wildcards.task,
            tokenized=snakemake.input.npz,
            tokenized_meta=snakemake.input.meta,
            backbone=BackboneSpec.from_config(snakemake.wildcards.backbone, backbone),
            method=run["method"],
            variant=run["variant"],
            seed=run["seed"],
            checkpoint=model,
            train_config=TrainConfig.from_config(dict(snakemake.params.training)),
            reference_layers=backbone["reference_layers"],
            out_json=out,
            device=snakemake.params.device,
            method_settings=dict(snakemake.params.method_settings),
            train_setting=run["train_setting"],
        )


run_step(snakemake.log[0], sweep_all)
