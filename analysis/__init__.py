"""Tables and figures from the run records, with the published numbers side by side.

- `analysis.published`: the one data file of published numbers (data/published/hashee_published.csv).
- `analysis.collect`: run records (results/<preset>/runs/**/seed<seed>.json) -> one tidy table.
- `analysis.hash_table`: the paper's "effect of hash functions" table (CSV, Markdown, LaTeX).
- `analysis.figures`: test score against FLOPs speed-up, one facet per task.
"""
