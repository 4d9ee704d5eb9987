"""Snakemake wrapper, rule table_inference_time: the timing records -> the numbers behind the
inference-time figure (CSV, Markdown, LaTeX)."""

from analysis.inference_time_table import write_inference_time_table
from earlyexit.plumbing.logs import run_step

# run_step: logging to the rule's log; a ValueError (bad timing file, named) ends in one line, exit 1.
run_step(snakemake.log[0], write_inference_time_table, timing_paths=list(snakemake.input.timing),
         out_csv=snakemake.output.csv, out_md=snakemake.output.md, out_tex=snakemake.output.tex,
         preset=snakemake.params.preset)
