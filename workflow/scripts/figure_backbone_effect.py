"""Snakemake wrapper, rule figure_backbone_effect: HashEE per backbone against each backbone's full
model and n-layer truncations."""

from analysis.backbone_effect import plot_backbone_effect
from analysis.collect import read_runs_csv
from earlyexit.plumbing.logs import run_step


def figure_backbone_effect(runs_csv, out_png, out_pdf, preset):
    return plot_backbone_effect(read_runs_csv(runs_csv), out_png, out_pdf, preset=preset)


# run_step: logging to the rule's log; a ValueError ends in one line, exit 1.
run_step(snakemake.log[0], figure_backbone_effect, runs_csv=snakemake.input.runs, out_png=snakemake.output.png,
         out_pdf=snakemake.output.pdf, preset=snakemake.params.preset)
