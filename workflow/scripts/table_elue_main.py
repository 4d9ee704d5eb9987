"""Snakemake wrapper, rule table_elue_main: the paper's main table, ours beside published, with the
ELUE score (CSV, Markdown, LaTeX)."""

from analysis.collect import read_runs_csv
from analysis.elue_main import write_elue_main
from analysis.published import load_published
from earlyexit.plumbing.logs import run_step


def table_elue_main(runs_csv, published_csv, config, out_csv, out_md, out_tex, preset):
    return write_elue_main(read_runs_csv(runs_csv), load_published(published_csv), config, out_csv, out_md, out_tex,
                           preset=preset)


# run_step: logging to the rule's log; a ValueError ends in one line, exit 1.
run_step(snakemake.log[0], table_elue_main, runs_csv=snakemake.input.runs, published_csv=snakemake.input.published,
         config={"methods": snakemake.params.methods, "requirements": snakemake.params.requirements,
                 "training_recipe": snakemake.params.training_recipe, "backbones": snakemake.params.backbones},
         out_csv=snakemake.output.csv, out_md=snakemake.output.md, out_tex=snakemake.output.tex,
         preset=snakemake.params.preset)
