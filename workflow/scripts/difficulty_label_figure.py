"""Snakemake wrapper: the per-layer label distribution of the model-defined datasets."""

from difficulty.steps import plot_label_distribution
from earlyexit.logging_utils import run_step

run_step(
    snakemake.log[0],
    plot_label_distribution,
    split_paths={level: {split: snakemake.input[f"{level}_{split}"] for split in ("train", "test")}
                 for level in snakemake.params.levels},
    out_figures=[snakemake.output.png, snakemake.output.pdf],
)
