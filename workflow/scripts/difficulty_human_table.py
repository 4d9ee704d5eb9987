"""Snakemake wrapper: the human-difficulty table (test accuracy vs chance) and its per-epoch figure."""

from difficulty.steps import render_human
from earlyexit.logging_utils import run_step

run_step(
    snakemake.log[0],
    render_human,
    run_paths=list(snakemake.input.runs),
    preset=snakemake.params.preset,
    out_csv=snakemake.output.csv,
    out_md=snakemake.output.md,
    out_tex=snakemake.output.tex,
    out_figures=[snakemake.output.png, snakemake.output.pdf],
)
