"""Snakemake wrapper, rule figure_difficulty_layer_labels: the per-layer label distribution of the
model-defined datasets."""

from difficulty.steps import plot_difficulty_layer_labels
from earlyexit.plumbing.logs import run_step

run_step(
    snakemake.log[0],
    plot_difficulty_layer_labels,
    split_paths={level: {split: snakemake.input[f"{level}_{split}"] for split in ("train", "test")}
                 for level in snakemake.params.levels},
    out_png=snakemake.output.png,
    out_pdf=snakemake.output.pdf,
)
