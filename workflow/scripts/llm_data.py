"""Snakemake wrapper, rule llm_data: one task's train/dev/test prompt -> target splits (JSON lines):
synthetic from the config, or the released hub source with its split sizes checked."""

from earlyexit.data.llm_tasks import SPLITS, hub_examples, synthetic_recall, write_examples
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job

check_job(snakemake, "hub" if snakemake.params.hub else None)   # the hub only where it downloads


def llm_data(task, synthetic, hub, outputs):
    if hub:
        splits = hub_examples(task)
    else:
        splits = synthetic_recall(synthetic["sizes"], synthetic["symbols"], synthetic["length"], synthetic["seed"])
    for split in SPLITS:
        write_examples(outputs[split], splits[split])


run_step(snakemake.log[0], llm_data, task=snakemake.wildcards.lmtask, synthetic=snakemake.params.synthetic,
         hub=snakemake.params.hub, outputs={s: getattr(snakemake.output, s) for s in SPLITS})
