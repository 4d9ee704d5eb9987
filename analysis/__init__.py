"""Tables and figures from the run records, with the published numbers side by side.

One name per artifact along its path: rule table_<name> / figure_<name> (workflow/rules/analysis.smk)
-> workflow/scripts/<rule>.py -> a function here -> results/<preset>/tables/<name>.{csv,md,tex} or
figures/<preset>/<name>.{png,pdf} -> caption workflow/report/<name>.rst.

- `analysis.published`: the one loader of the published numbers (data/published/hashee_published.csv).
- `analysis.table_writer`: the one table writer (tidy CSV; Markdown and LaTeX from one layout).
- `analysis.figure_writer`: the one figure writer (PNG and PDF, atomic and byte-stable).
- `analysis.display`: rows, labels, colours and task names, read from the methods registry.
- `analysis.collect`: run records -> the runs table (`runs`).
- `analysis.hash_functions`: the paper's "effect of hash functions" table, like for like (`hash_functions`).
- `analysis.score_vs_speedup`: dev score against FLOPs speed-up, one facet per task (`score_vs_speedup`).
"""
