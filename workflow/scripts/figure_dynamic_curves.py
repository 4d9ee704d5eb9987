"""Snakemake wrapper, rule figure_dynamic_curves: per task, every dynamic method's score-vs-speed-up curve
and HashEE's points, published points hollow on real tasks (PNG + PDF)."""

from analysis.collect import read_curves_csv, read_runs_csv
from analysis.dynamic import plot_dynamic_curves
from analysis.published import load_published
from earlyexit.plumbing.logs import run_step


def figure_dynamic_curves(runs_csv, curves_csv, published_csv, out_png, out_pdf, preset):
    return plot_dynamic_curves(read_runs_csv(runs_csv), read_curves_csv(curves_csv), out_png, out_pdf,
                               published=load_published(published_csv), preset=preset)


run_step(snakemake.log[0], figure_dynamic_curves, runs_csv=snakemake.input.runs, curves_csv=snakemake.input.curves,
         published_csv=snakemake.input.published, out_png=snakemake.output.png, out_pdf=snakemake.output.pdf,
         preset=snakemake.params.preset)
