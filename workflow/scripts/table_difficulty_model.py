"""Snakemake wrapper, rule table_difficulty_model: the model-defined difficulty table (ours mean ± std
over seeds, published side by side)."""

from difficulty.steps import write_difficulty_model
from earlyexit.plumbing.logs import run_step

run_step(
    snakemake.log[0],
    write_difficulty_model,
    run_paths=list(snakemake.input.runs),
    published_path=snakemake.input.published,
    preset=snakemake.params.preset,
    out_csv=snakemake.output.csv,
    out_md=snakemake.output.md,
    out_tex=snakemake.output.tex,
    counts_paths={key.removeprefix("counts_"): path for key, path in snakemake.input.items() if key.startswith("counts_")},
)
