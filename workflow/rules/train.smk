# One fine-tune + evaluation per task x backbone x method x variant x seed. The method comes from the
# registry (earlyexit/methods/): "full" is the no-exit reference row, "hashee" runs one hash function.
# With group_small_jobs (the demo), one job per task x backbone x method runs all its variants and
# seeds in one interpreter: on CPU the per-job start (Python + torch) would rival the training.


for _job in run_jobs("train_eval", lambda backbone: BACKBONE_RUNS[backbone]):

    rule:
        name:
            _job.rule
        wildcard_constraints:
            task=_job.task_pattern,
            backbone=_job.backbone_pattern,
        input:
            npz=paths.tokenized(PRESET, W["task"], W["backbone"], "npz"),
            meta=paths.tokenized(PRESET, W["task"], W["backbone"], "json"),
            artifacts=_job.artifact_inputs,
            weights=backbone_weights,
        output:
            record=_job.files(paths.run_record),
            # The selected weights: what sweeps, timings and methods built on a run (artifact kind
            # "checkpoint") read. Removed once no job needs them, unless training.save_checkpoint.
            model=[keep_or_temp(path) for path in _job.files(paths.checkpoint)],
        params:
            preset=PRESET,
            backbone=lambda wildcards: backbone_entry(wildcards.backbone),
            training=_job.training,
            device=config["device"],
            runs=_job.runs,
            method_settings=_job.settings,
            # summarization runs: generate() settings and the full model's depths (None otherwise)
            summarization=summary_run_params,
        log:
            _job.log,
        threads: 1
        # a grouped job of many runs first: started last, it would leave the other cores idle at the end
        priority: _job.size
        resources:
            gpu=lambda w: gpus_for(config, config["device"]),
            mem_mb=lambda w, attempt: 16000 * attempt,
            runtime=lambda w, attempt, n=_job.size: 480 * n * attempt,
        conda:
            "../envs/hashee.yaml"
        script:
            "../scripts/train_eval.py"
