"""Snakemake wrapper, rule match_operating_points (local, cheap): every sweep file of one dynamic
curve (all runs of its training-time sweep, all seeds) + the published numbers -> the matched
operating point per seed (earlyexit/dynamic/matching.py)."""

from analysis.published import load_published
from earlyexit.dynamic.matching import match_file
from earlyexit.plumbing.logs import run_step

run_step(snakemake.log[0], lambda: match_file(sweep_paths=list(snakemake.input.sweeps),
                                              published=load_published(snakemake.input.published),
                                              default_target=snakemake.params.target_speedup,
                                              out_json=snakemake.output.matched))
