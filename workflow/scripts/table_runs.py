"""Snakemake wrapper, rule table_runs: every run record of the preset -> one tidy runs table (CSV), with
each dynamic curve's matched operating point per seed (rule match_operating_points); every sweep point
-> dynamic_curves.csv."""

from analysis.collect import collect_runs, curves_frame, write_curves_csv, write_runs_csv
from earlyexit.plumbing.logs import run_step


def table_runs(paths, sweeps, matched, out_csv, out_curves):
    runs = collect_runs(paths, sweeps=sweeps, matched=matched)
    write_runs_csv(runs, out_csv)
    write_curves_csv(curves_frame(sweeps, matched), out_curves)
    return runs


# run_step: logging to the rule's log; a ValueError (bad record, named by file) ends in one line, exit 1.
run_step(snakemake.log[0], table_runs, paths=list(snakemake.input.runs), sweeps=list(snakemake.input.sweeps),
         matched=list(snakemake.input.matched),
         out_csv=snakemake.output.csv, out_curves=snakemake.output.curves)
