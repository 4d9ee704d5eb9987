"""Snakemake wrapper: fit one hash function on one task's tokenised training split."""

from earlyexit.backbones import BackboneSpec
from earlyexit.hash_artifacts import fit_hash_artifact
from earlyexit.plumbing.files import read_json
from earlyexit.plumbing.logs import run_step
from earlyexit.plumbing.preflight import check_job

check_job(snakemake, snakemake.params.backbone)  # this node: a GPU if the rule asked for one, the hub if it downloads
run_step(
    snakemake.log[0],
    fit_hash_artifact,
    tokenized=snakemake.input.npz,
    meta=read_json(snakemake.input.meta),
    backbone=BackboneSpec.from_config(snakemake.wildcards.backbone, snakemake.params.backbone),
    hash_name=snakemake.wildcards.hash,
    hash_config=snakemake.params.hash_config,
    seed=snakemake.params.seed,
    out_npz=snakemake.output.npz,
    out_summary=snakemake.output.summary,
)
