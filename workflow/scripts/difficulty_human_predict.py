"""Snakemake wrapper: simple-vs-difficult classification on the human-defined dataset for one seed."""

from difficulty.steps import run_human_predictor
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job

check_job(snakemake, snakemake.params.backbone)  # this node: a GPU if the rule asked for one, the hub if it downloads
run_step(
    snakemake.log[0],
    run_human_predictor,
    predictor=snakemake.wildcards.predictor,
    seed=int(snakemake.wildcards.seed),
    backbone=snakemake.params.backbone,
    training=snakemake.params.training,
    options=snakemake.params.options,
    train_path=snakemake.input.train,
    test_path=snakemake.input.test,
    out_json=snakemake.output[0],
    threads=snakemake.threads,
)
