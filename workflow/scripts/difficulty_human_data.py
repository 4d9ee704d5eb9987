"""Snakemake wrapper: build the human-defined difficulty dataset (simple vs difficult SNLI pairs)."""

from difficulty.steps import build_human_dataset
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job

check_job(snakemake, snakemake.params.data)  # this node: a GPU if the rule asked for one, the hub if it downloads
run_step(
    snakemake.log[0],
    build_human_dataset,
    data=snakemake.params.data,
    out_train=snakemake.output.train,
    out_test=snakemake.output.test,
    out_counts=snakemake.output.counts,
)
