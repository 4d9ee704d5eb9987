"""Snakemake wrapper, rule figure_inference_time: the timing records -> wall-clock speed-up against
FLOPs speed-up, one panel per batch size, with the y = x line (PNG + PDF)."""

from analysis.inference_time import plot_inference_time
from earlyexit.plumbing.logs import run_step

# run_step: logging to the rule's log; a ValueError (bad timing file, named) ends in one line, exit 1.
run_step(snakemake.log[0], plot_inference_time, timing_paths=list(snakemake.input.timing),
         out_png=snakemake.output.png, out_pdf=snakemake.output.pdf, preset=snakemake.params.preset)
