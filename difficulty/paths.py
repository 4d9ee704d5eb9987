"""Where the difficulty study's artifacts live (results/<preset>/difficulty/..., figures/<preset>/...),
in the style of earlyexit.layout; placeholders like "{predictor}" pass through for Snakemake."""

from __future__ import annotations

from earlyexit import layout


def data_file(preset, level, name) -> str:
    """name: train.tsv, test.tsv or counts.json of level human | sentence | token."""
    return f"results/{preset}/difficulty/data/{level}/{name}"


def run_record(preset, level, predictor, seed) -> str:
    return f"results/{preset}/difficulty/runs/{level}/{predictor}/seed{seed}.json"


def table(preset, name) -> str:
    return f"results/{preset}/difficulty/{name}"


def figure(preset, name) -> str:
    return layout.figure(preset, f"difficulty_{name}")


def log_file(preset, rule, *parts) -> str:
    return layout.log_file(preset, rule, *parts)


def run_records(preset, level, predictors, seeds) -> list[str]:
    return [run_record(preset, level, p, s) for p in predictors for s in seeds]


def targets(preset, enabled: bool = True) -> list[str]:
    """The study's final artifacts (what `rule all` needs); none when the config has no study."""
    if not enabled:
        return []
    return [
        *[table(preset, f"difficulty_table.{ext}") for ext in ("csv", "md", "tex")],
        *[table(preset, f"human_difficulty.{ext}") for ext in ("csv", "md", "tex")],
        *[figure(preset, f"human_accuracy.{ext}") for ext in ("png", "pdf")],
        *[figure(preset, f"layer_labels.{ext}") for ext in ("png", "pdf")],
    ]
