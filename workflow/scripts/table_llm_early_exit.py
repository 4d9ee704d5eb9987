"""Snakemake wrapper, rule table_llm_early_exit: ConsistentEE for generation against CALM (matched
point), the truncations and the full model (CSV, Markdown, LaTeX)."""

from analysis.llm_early_exit import write_llm_table
from earlyexit.plumbing.logs import run_step

run_step(snakemake.log[0], write_llm_table, run_paths=list(snakemake.input.runs), out_csv=snakemake.output.csv,
         out_md=snakemake.output.md, out_tex=snakemake.output.tex, preset=snakemake.params.preset)
