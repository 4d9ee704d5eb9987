"""Snakemake wrapper: fit the hash functions of one job (one, or all of a task x backbone) on one
task's tokenised training split."""

from earlyexit.models.backbones import BackboneSpec
from earlyexit.hashing.artifacts import fit_hash_artifact
from earlyexit.plumbing.files import read_json
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job

check_job(snakemake, snakemake.params.backbone)  # this node: a GPU if the rule asked for one, the hub if it downloads


def fit_all():
    fits = snakemake.params.fits
    for (hash_name, fit), npz, summary in zip(fits, snakemake.output.npz, snakemake.output.summary, strict=True):
        fit_hash_artifact(
            tokenized=snakemake.input.npz,
            meta=read_json(snakemake.input.meta),
            backbone=BackboneSpec.from_config(snakemake.wildcards.backbone, snakemake.params.backbone),
            hash_name=hash_name,
            hash_config=snakemake.params.hash_config,
            seed=int(fit[4:]) if fit.startswith("seed") else 0,
            out_npz=npz,
            out_summary=summary,
        )


run_step(snakemake.log[0], fit_all)
