"""Snakemake wrapper, rule figure_score_vs_speedup: dev score against FLOPs speed-up per task,
published points hollow on real tasks only (PNG + PDF)."""

from analysis.collect import read_runs_csv
from analysis.published import load_published
from analysis.score_vs_speedup import plot_score_vs_speedup
from earlyexit.plumbing.logs import run_step


def figure_score_vs_speedup(runs_csv, published_csv, out_png, out_pdf, preset):
    return plot_score_vs_speedup(read_runs_csv(runs_csv), out_png, out_pdf,
                                 published_df=load_published(published_csv), preset=preset)


# run_step: logging to the rule's log; a ValueError ends in one line, exit 1.
run_step(snakemake.log[0], figure_score_vs_speedup, runs_csv=snakemake.input.runs,
         published_csv=snakemake.input.published, out_png=snakemake.output.png, out_pdf=snakemake.output.pdf,
         preset=snakemake.params.preset)
