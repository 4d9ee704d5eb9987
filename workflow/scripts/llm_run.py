"""Snakemake wrapper, rule llm_run: one generation_lm method x variant x seed on the shared
multi-exit LM -> one schema-checked record of its operating points."""

import torch

from earlyexit.generation.llm_experiment import run_llm_method
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job
from earlyexit.plumbing.torch_setup import pick_device
from earlyexit.training.state import StateFile

check_job(snakemake, snakemake.params.backbone)
torch.set_num_threads(snakemake.threads)
w = snakemake.wildcards
state = StateFile(snakemake.output.record + ".state.pt",
                  {"task": w.lmtask, "backbone": w.lmbackbone, "method": w.lmmethod, "variant": w.lmvariant,
                   "seed": int(w.seed)})

run_step(snakemake.log[0], run_llm_method, preset=snakemake.params.preset, task=w.lmtask,
         split_dir=str(snakemake.input.train).rsplit("/", 1)[0], backbone_name=w.lmbackbone,
         backbone=dict(snakemake.params.backbone), settings=dict(snakemake.params.settings), method=w.lmmethod,
         variant=w.lmvariant, seed=int(w.seed), device=pick_device(snakemake.params.device),
         checkpoint=snakemake.input.exits, out_json=snakemake.output.record, state=state)
