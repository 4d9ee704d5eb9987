"""Snakemake wrapper: write one task's normalized splits and summary.json (see earlyexit.data.prepare)."""

import sys
from pathlib import Path

from earlyexit.data.prepare import PREPARE_ERRORS, prepare_task
from earlyexit.logging_utils import setup_logging

log = setup_logging(snakemake.log[0])
params = snakemake.params
try:
    prepare_task(
        snakemake.wildcards.task,
        params.source,
        Path(snakemake.output.summary).parent,
        data_dir=params.data_dir,
        hub_cache=params.hub_cache,
        hub_revision=params.hub_revision,
        synthetic_sizes=params.synthetic_sizes,
        seed=params.seed,
    )
except PREPARE_ERRORS as error:
    # Bad input or no network: one line in the log, no traceback.
    log.error("%s", str(error).strip().splitlines()[0])
    sys.exit(1)
