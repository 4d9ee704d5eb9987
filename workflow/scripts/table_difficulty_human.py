"""Snakemake wrapper, rule table_difficulty_human: the human-difficulty table (test accuracy vs chance)."""

from difficulty.steps import write_difficulty_human
from earlyexit.plumbing.logs import run_step

run_step(
    snakemake.log[0],
    write_difficulty_human,
    run_paths=list(snakemake.input.runs),
    preset=snakemake.params.preset,
    out_csv=snakemake.output.csv,
    out_md=snakemake.output.md,
    out_tex=snakemake.output.tex,
    counts_path=snakemake.input.counts,
)
