"""Snakemake wrapper, rule sweep_exits: each dynamic run's checkpoint of the job (one, or a method's
tasks x variants x seeds) -> its sweep file."""

import torch

from earlyexit.models.backbones import BackboneSpec
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job
from earlyexit.dynamic.sweeps import run_sweep
from earlyexit.training.loop import TrainConfig

RUNS = snakemake.params.runs
check_job(snakemake, RUNS[0]["backbone_entry"])   # a job's runs share one backbone
torch.set_num_threads(snakemake.threads)


def sweep_all():
    for run, model, out in zip(RUNS, snakemake.input.model, snakemake.output.sweep, strict=True):
        backbone = run["backbone_entry"]
        run_sweep(
            preset=snakemake.params.preset,
            task_name=run["task"],
            tokenized=run["npz"],
            tokenized_meta=run["meta"],
            backbone=BackboneSpec.from_config(run["backbone"], backbone),
            method=run["method"],
            variant=run["variant"],
            seed=run["seed"],
            checkpoint=model,
            train_config=TrainConfig.from_config(dict(run["training"])),
            reference_layers=backbone["reference_layers"],
            out_json=out,
            device=snakemake.params.device,
            method_settings=dict(snakemake.params.method_settings),
            train_setting=run["train_setting"],
        )


run_step(snakemake.log[0], sweep_all)
