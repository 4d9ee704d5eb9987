# One artifact per hash function, fitted on the training split only and reused by every run.


rule fit_hash:
    input:
        npz=rules.tokenize_task.output.npz,
        meta=rules.tokenize_task.output.meta,
    output:
        npz=paths.hash_artifact(PRESET, W["task"], W["backbone"], W["hash"], W["fit"], "npz"),
        summary=paths.hash_artifact(PRESET, W["task"], W["backbone"], W["hash"], W["fit"], "json"),
    params:
        backbone=lambda wildcards: backbone_entry(wildcards.backbone),
        hash_config=lambda wildcards: {**config["hash"], **SUMMARIZATION["hash"]} if is_summarization(wildcards.task) else config["hash"],
        seed=lambda wildcards: int(wildcards.fit[4:]) if wildcards.fit.startswith("seed") else 0,
    log:
        paths.log_file(PRESET, "fit_hash", W["task"], W["backbone"], W["hash"], W["fit"]),
    resources:
        mem_mb=lambda w, attempt: 16000 * attempt,  # k-means over the vocabulary x hidden embedding matrix
        runtime=lambda w, attempt: 60 * attempt,
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/fit_hash.py"
