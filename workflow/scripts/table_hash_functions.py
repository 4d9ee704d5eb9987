"""Snakemake wrapper, rule table_hash_functions: the "effect of hash functions" table, ours beside
published (CSV, Markdown, LaTeX)."""

from analysis.collect import read_runs_csv
from analysis.hash_functions import write_hash_functions
from analysis.published import load_published
from earlyexit.plumbing.logs import run_step


def table_hash_functions(runs_csv, published_csv, out_csv, out_md, out_tex, preset):
    return write_hash_functions(read_runs_csv(runs_csv), load_published(published_csv), out_csv, out_md, out_tex,
                                preset=preset)


# run_step: logging to the rule's log; a ValueError ends in one line, exit 1.
run_step(snakemake.log[0], table_hash_functions, runs_csv=snakemake.input.runs,
         published_csv=snakemake.input.published, out_csv=snakemake.output.csv, out_md=snakemake.output.md,
         out_tex=snakemake.output.tex, preset=snakemake.params.preset)
