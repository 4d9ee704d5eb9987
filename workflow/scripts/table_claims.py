"""Snakemake wrapper, rule table_claims: the claims ledger (every claim of the papers with its numbers,
named test, threshold and verdict) from this preset's records (CSV, Markdown, LaTeX)."""

from analysis.claims_io import write_claims
from earlyexit.plumbing.logs import run_step

# run_step: logging to the rule's log; a ValueError (bad record, named by file) ends in one line, exit 1.
run_step(snakemake.log[0], write_claims, runs_csv=snakemake.input.runs, curves_csv=snakemake.input.curves,
         summaries=list(snakemake.input.get("summaries", [])), timing=list(snakemake.input.get("timing", [])),
         difficulty_human=snakemake.input.get("difficulty_human"), difficulty_model=snakemake.input.get("difficulty_model"),
         thresholds=snakemake.params.thresholds, preset=snakemake.params.preset, out_csv=snakemake.output.csv,
         out_md=snakemake.output.md, out_tex=snakemake.output.tex, pretrained_pairs=snakemake.params.pretrained_pairs)
