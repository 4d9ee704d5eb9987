# One artifact per hash function, fitted on the training split only and reused by every run.
# With group_small_jobs, one job per task x backbone (rule fit_hashes) fits every hash the runs need.


for _name, _fits, _tasks, _backbones in fit_hash_jobs():

    rule:
        name:
            _name
        wildcard_constraints:
            task=_alternatives(_tasks) if _tasks is not None else ".+",
            backbone=_alternatives(_backbones) if _backbones is not None else ".+",
        input:
            npz=rules.tokenize_task.output.npz,
            meta=rules.tokenize_task.output.meta,
            weights=backbone_weights,     # the clustered hash reads the input embeddings
        output:
            npz=[paths.hash_artifact(PRESET, W["task"], W["backbone"], h, f, "npz") for h, f in _fits],
            summary=[paths.hash_artifact(PRESET, W["task"], W["backbone"], h, f, "json") for h, f in _fits],
        params:
            backbone=lambda wildcards: backbone_entry(wildcards.backbone),
            hash_config=lambda wildcards: {**config["hash"], **SUMMARIZATION["hash"]} if is_summarization(wildcards.task) else config["hash"],
            # (hash, fit) per output pair; fit "seed<N>" fits with that seed, "train" with 0
            fits=lambda wildcards, fits=_fits: [(wildcards.hash, wildcards.fit)] if fits[0][0] == W["hash"] else fits,
        log:
            paths.log_file(PRESET, "fit_hash", W["task"], W["backbone"], *((W["hash"], W["fit"]) if _fits[0][0] == W["hash"] else ("all-hashes",))),
        # seconds of work that unlock the longest training jobs (HashEE's): scheduled before any training
        priority: UNLOCKS_TRAINING
        resources:
            mem_mb=lambda w, attempt: 16000 * attempt,  # k-means over the vocabulary x hidden embedding matrix
            runtime=lambda w, attempt, n=len(_fits): 60 * attempt * n,
        conda:
            "../envs/hashee.yaml"
        script:
            "../scripts/fit_hash.py"
