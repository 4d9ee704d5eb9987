"""Snakemake wrapper: the difficulty table (ours mean ± std over seeds, published side by side)."""

from difficulty.steps import render_difficulty_table
from earlyexit.logging_utils import run_step

run_step(
    snakemake.log[0],
    render_difficulty_table,
    run_paths=list(snakemake.input.runs),
    published_path=snakemake.input.published,
    preset=snakemake.params.preset,
    out_csv=snakemake.output.csv,
    out_md=snakemake.output.md,
    out_tex=snakemake.output.tex,
)
