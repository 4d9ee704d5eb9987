"""Snakemake wrapper: write one task's normalized splits and summary.json (see earlyexit.data.prepare)."""

from pathlib import Path

from earlyexit.data.prepare import prepare_task
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job

params = snakemake.params
check_job(snakemake, snakemake.params.source)  # this node: a GPU if the rule asked for one, the hub if it downloads
# run_step: a bad file or no network ends in one line naming the file (or the config key), exit 1.
run_step(
    snakemake.log[0],
    prepare_task,
    snakemake.wildcards.task,
    params.source,
    Path(snakemake.output.summary).parent,
    data_dir=params.data_dir,
    hub_cache=params.hub_cache,
    hub_revision=params.hub_revision,
    synthetic_sizes=params.synthetic_sizes,
    seed=params.seed,
    subsample=params.subsample,
    split_files=params.split_files,
)
