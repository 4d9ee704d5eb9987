"""Snakemake wrapper: the "effect of hash functions" table (ours beside published) as CSV, Markdown, LaTeX."""

from analysis.collect import read_runs_csv
from analysis.hash_table import write_hash_table
from analysis.published import load_published
from earlyexit.logging_utils import run_step


def render(runs_csv, published_csv, out_csv, out_md, out_tex, preset):
    return write_hash_table(read_runs_csv(runs_csv), load_published(published_csv), out_csv, out_md, out_tex,
                            preset=preset)


# run_step: logging to the rule's log; a ValueError ends in one line, exit 1.
run_step(snakemake.log[0], render, runs_csv=snakemake.input.runs, published_csv=snakemake.input.published,
         out_csv=snakemake.output.csv, out_md=snakemake.output.md, out_tex=snakemake.output.tex,
         preset=snakemake.params.preset)
