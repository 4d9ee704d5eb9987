"""Snakemake wrapper, rule table_dynamic: the dynamic early-exit table, ours beside published (CSV, MD, LaTeX)."""

from analysis.collect import read_runs_csv
from analysis.dynamic import write_dynamic_table
from analysis.published import load_published
from earlyexit.plumbing.logs import run_step


def table_dynamic(runs_csv, published_csv, out_csv, out_md, out_tex, preset, recipe):
    return write_dynamic_table(read_runs_csv(runs_csv), load_published(published_csv), out_csv, out_md, out_tex,
                               preset=preset, recipe=recipe)


run_step(snakemake.log[0], table_dynamic, runs_csv=snakemake.input.runs, published_csv=snakemake.input.published,
         out_csv=snakemake.output.csv, out_md=snakemake.output.md, out_tex=snakemake.output.tex,
         preset=snakemake.params.preset, recipe=snakemake.params.training_recipe)
