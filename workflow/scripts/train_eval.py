"""Snakemake wrapper: one task x backbone x method x variant x seed -> one run record."""

import torch

from earlyexit.backbones import BackboneSpec
from earlyexit.experiment import run_experiment
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job
from earlyexit.training import TrainConfig

check_job(snakemake, snakemake.params.backbone)  # this node: a GPU if the rule asked for one, the hub if it downloads
torch.set_num_threads(snakemake.threads)
backbone = snakemake.params.backbone
summarization = snakemake.params.summarization or {}
run_step(
    snakemake.log[0],
    run_experiment,
    preset=snakemake.params.preset,
    task_name=snakemake.wildcards.task,
    tokenized=snakemake.input.npz,
    tokenized_meta=snakemake.input.meta,
    backbone=BackboneSpec.from_config(snakemake.wildcards.backbone, backbone),
    method=snakemake.wildcards.method,
    variant=snakemake.wildcards.variant,
    # the inputs other than the tokenised task are the artifacts the method declared (run_inputs)
    artifacts={name: path for name, path in snakemake.input.items() if name not in ("npz", "meta")},
    # checkpoint_every_steps is not a param: changing it changes no result, so it reruns nothing.
    train_config=TrainConfig.from_config({
        **snakemake.params.training,
        "checkpoint_every_steps": snakemake.config["training"]["checkpoint_every_steps"],
    }),
    seed=int(snakemake.wildcards.seed),
    reference_layers=backbone["reference_layers"],
    reference_decoder_layers=summarization.get("reference_decoder_layers"),
    generation=summarization.get("generation"),
    out_json=snakemake.output.record,
    checkpoint=snakemake.output.model,
    device=snakemake.params.device,
    progress=True,
)
