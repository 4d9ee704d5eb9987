"""Snakemake wrapper: the runs of one train_eval job (one, or a method's tasks x variants x seeds)
-> one run record and one checkpoint each, in order."""

import torch

from earlyexit.models.backbones import BackboneSpec
from earlyexit.runs.completed import discard as discard_completed
from earlyexit.runs.experiment import run_experiment
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job
from earlyexit.training.loop import TrainConfig

RUNS = snakemake.params.runs
# this node: a GPU if the rule asked for one, the hub if it downloads (a job's runs share one backbone)
check_job(snakemake, RUNS[0]["backbone_entry"])
torch.set_num_threads(snakemake.threads)
declared = set(snakemake.input.artifacts)


def run_all():
    for run, record, model in zip(RUNS, snakemake.output.record, snakemake.output.model, strict=True):
        # a run's artifacts are files of this rule's inputs (RunJob.artifact_inputs)
        assert set(run["artifacts"].values()) <= declared, run
        backbone = run["backbone_entry"]
        summarization = run["summarization"] or {}
        run_experiment(
            preset=snakemake.params.preset,
            task_name=run["task"],
            tokenized=run["npz"],
            tokenized_meta=run["meta"],
            backbone=BackboneSpec.from_config(run["backbone"], backbone),
            method=run["method"],
            variant=run["variant"],
            artifacts=run["artifacts"],
            # checkpoint_every_steps is not a param: changing it changes no result, so it reruns nothing.
            train_config=TrainConfig.from_config({
                **run["training"],
                "checkpoint_every_steps": snakemake.config["training"]["checkpoint_every_steps"],
            }),
            seed=run["seed"],
            reference_layers=backbone["reference_layers"],
            reference_decoder_layers=summarization.get("reference_decoder_layers"),
            generation=summarization.get("generation"),
            out_json=record,
            checkpoint=model,
            device=snakemake.params.device,
            progress=True,
            method_settings=dict(snakemake.params.method_settings),
            train_setting=run["train_setting"],
            # a run finished before the job fails is kept and restored by the rerun, never retrained
            keep_completed=True,
        )
    # every run of the job is done: its outputs hold the results, a deliberate rerun trains anew
    for record in snakemake.output.record:
        discard_completed(record)


run_step(snakemake.log[0], run_all)
