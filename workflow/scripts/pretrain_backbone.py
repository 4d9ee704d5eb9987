"""Snakemake wrapper, rule pretrain_backbone: the corpus, then earlyexit.training.pretraining.pretrain -> the
backbone's HF folder and its record (results/<preset>/pretrained/<backbone>/)."""

import torch

from earlyexit.plumbing.files import atomic_write_json
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job
from earlyexit.training.pretraining import (PretrainSettings, build_corpus, difficulty_texts, elue_texts, pretrain,
                                   split_texts)
from earlyexit.training.state import StateFile, file_digest

check_job(snakemake, snakemake.params.base)
torch.set_num_threads(snakemake.threads)
params, inputs = snakemake.params, snakemake.input


def run():
    sources = {f"{task} train": split_texts(path, task) for task, path in zip(params.train_tasks, inputs.train, strict=True)}
    sources.update({f"difficulty {path}": difficulty_texts(path) for path in inputs.difficulty})
    scored_splits = [(task, split) for task in params.scored_tasks for split in ("dev", "test")]
    excluded = {f"{task} {split} (prepared)": split_texts(path, task)
                for (task, split), path in zip(scored_splits, inputs.scored, strict=True)}
    excluded.update({f"{task} {path}": elue_texts(path, task)
                     for task, path in zip(params.elue_scored, inputs.elue_scored, strict=True)})
    texts, corpus = build_corpus(sources, excluded)
    settings = PretrainSettings.from_config({
        **params.settings,
        "checkpoint_every_steps": snakemake.config["pretraining"]["checkpoint_every_steps"],  # changes no result
    })
    # the state is resumed only by a rerun of the same settings on the same corpus
    identity = {"backbone": snakemake.wildcards.backbone, "base": params.base,
                "corpus": {path: file_digest(path) for path in [*inputs.train, *inputs.difficulty]}}
    record = pretrain(params.base, texts, settings, out_dir=snakemake.output.model,
                      state=StateFile(params.state, identity), progress=True)
    record = {"preset": snakemake.config["preset"], "backbone": snakemake.wildcards.backbone,
              "corpus": corpus, **record}
    atomic_write_json(snakemake.output.record, record)


run_step(snakemake.log[0], run)
