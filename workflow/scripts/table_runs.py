"""Snakemake wrapper, rule table_runs: every run record of the preset -> one tidy runs table (CSV)."""

from analysis.collect import collect_runs, write_runs_csv
from earlyexit.plumbing.logs import run_step


def table_runs(paths, out_csv):
    runs = collect_runs(paths)
    write_runs_csv(runs, out_csv)
    return runs


# run_step: logging to the rule's log; a ValueError (bad record, named by file) ends in one line, exit 1.
run_step(snakemake.log[0], table_runs, paths=list(snakemake.input.runs), out_csv=snakemake.output.csv)
