"""Snakemake wrapper, rule llm_exits: the shared multi-exit LM of one task x backbone x seed (base LM,
per-layer heads, per-token memorized layers), resumable beside its output."""

import torch

from earlyexit.generation.llm_experiment import train_exits
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job
from earlyexit.plumbing.torch_setup import pick_device
from earlyexit.training.state import StateFile

check_job(snakemake, snakemake.params.backbone)
torch.set_num_threads(snakemake.threads)
w = snakemake.wildcards
state = StateFile(snakemake.output.model + ".state.pt", {"task": w.lmtask, "backbone": w.lmbackbone, "seed": int(w.seed)})

run_step(snakemake.log[0], train_exits, task=w.lmtask, split_dir=str(snakemake.input.train).rsplit("/", 1)[0],
         backbone=dict(snakemake.params.backbone), settings=dict(snakemake.params.settings), seed=int(w.seed),
         device=pick_device(snakemake.params.device), out_checkpoint=snakemake.output.model,
         out_summary=snakemake.output.summary, state=state)
