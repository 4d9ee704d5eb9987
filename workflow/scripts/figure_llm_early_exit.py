"""Snakemake wrapper, rule figure_llm_early_exit: ROUGE-L against speed-up, one curve per method (PNG + PDF)."""

from analysis.llm_early_exit import plot_llm_early_exit
from earlyexit.plumbing.logs import run_step

run_step(snakemake.log[0], plot_llm_early_exit, run_paths=list(snakemake.input.runs), out_png=snakemake.output.png,
         out_pdf=snakemake.output.pdf, preset=snakemake.params.preset)
