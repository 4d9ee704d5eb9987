# One artifact per hash function, fitted on the training split only and reused by every run.
# With group_small_jobs, one job per task x backbone fits every hash the runs need.


rule fit_hash:
    input:
        npz=rules.tokenize_task.output.npz,
        meta=rules.tokenize_task.output.meta,
    output:
        npz=[paths.hash_artifact(PRESET, W["task"], W["backbone"], h, f, "npz") for h, f in hash_fit_outputs()],
        summary=[paths.hash_artifact(PRESET, W["task"], W["backbone"], h, f, "json") for h, f in hash_fit_outputs()],
    params:
        backbone=lambda wildcards: config["backbones"][wildcards.backbone],
        hash_config=config["hash"],
        # (hash, fit) per output pair; fit "seed<N>" fits with that seed, "train" with 0
        fits=lambda w: HASH_FITS if config["group_small_jobs"] else [(w.hash, w.fit)],
    log:
        paths.log_file(PRESET, "fit_hash", W["task"], W["backbone"], *(("all-hashes",) if config["group_small_jobs"] else (W["hash"], W["fit"]))),
    resources:
        mem_mb=lambda w, attempt: 16000 * attempt,  # k-means over the vocabulary x hidden embedding matrix
        runtime=lambda w, attempt: 60 * attempt * (len(HASH_FITS) if config["group_small_jobs"] else 1),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/fit_hash.py"
