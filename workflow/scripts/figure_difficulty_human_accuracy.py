"""Snakemake wrapper, rule figure_difficulty_human_accuracy: per-epoch train/test accuracy of the
human-difficulty predictors."""

from difficulty.steps import plot_difficulty_human_accuracy
from earlyexit.plumbing.logs import run_step

run_step(
    snakemake.log[0],
    plot_difficulty_human_accuracy,
    run_paths=list(snakemake.input.runs),
    out_png=snakemake.output.png,
    out_pdf=snakemake.output.pdf,
)
