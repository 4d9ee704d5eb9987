"""Where the difficulty study's artifacts live: datasets and run records under
results/<preset>/difficulty/; its tables and figures beside the HashEE ones, named difficulty_<what>
(results/<preset>/tables/, figures/<preset>/, see earlyexit.layout). Placeholders like "{predictor}"
pass through for Snakemake."""

from __future__ import annotations

from earlyexit import layout

# The study's tables and figures (rules table_<name> / figure_<name> in workflow/rules/difficulty.smk).
TABLES = ("difficulty_model", "difficulty_human")
FIGURES = ("difficulty_human_accuracy", "difficulty_layer_labels")


def data_file(preset, level, name) -> str:
    """name: train.tsv, test.tsv or counts.json of level human | sentence | token."""
    return f"results/{preset}/difficulty/data/{level}/{name}"


def run_record(preset, level, predictor, seed) -> str:
    return f"results/{preset}/difficulty/runs/{level}/{predictor}/seed{seed}.json"


def log_file(preset, rule, *parts) -> str:
    return layout.log_file(preset, rule, *parts)


def run_records(preset, level, predictors, seeds) -> list[str]:
    return [run_record(preset, level, p, s) for p in predictors for s in seeds]


def targets(preset, enabled: bool = True) -> list[str]:
    """The study's final artifacts (what `rule all` needs); none when the config has no study."""
    if not enabled:
        return []
    return [
        *[layout.table(preset, f"{name}.{ext}") for name in TABLES for ext in ("csv", "md", "tex")],
        *[layout.figure(preset, f"{name}.{ext}") for name in FIGURES for ext in ("png", "pdf")],
    ]
