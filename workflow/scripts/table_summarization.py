"""Snakemake wrapper, rule table_summarization: the summarization table, ours beside published
(CSV, Markdown, LaTeX)."""

from analysis.published import load_published
from analysis.summarization import write_summarization
from earlyexit.plumbing.logs import run_step


def table_summarization(run_paths, published_csv, out_csv, out_md, out_tex, preset):
    return write_summarization(list(run_paths), load_published(published_csv), out_csv, out_md, out_tex, preset=preset)


# run_step: logging to the rule's log; a ValueError ends in one line, exit 1.
run_step(snakemake.log[0], table_summarization, run_paths=snakemake.input.runs,
         published_csv=snakemake.input.published, out_csv=snakemake.output.csv, out_md=snakemake.output.md,
         out_tex=snakemake.output.tex, preset=snakemake.params.preset)
