# One fine-tune + evaluation per task x backbone x method x variant x seed. The method comes from the
# registry (earlyexit/methods/): the reference row trains without exits; a token-level variant is one hash function.
# With group_small_jobs (the demo), one job per backbone x method runs all its tasks, variants and
# seeds in one interpreter: on CPU the per-job start (Python + torch) would rival the training.


for _job in run_jobs("train_eval", lambda backbone: BACKBONE_RUNS[backbone]):

    rule:
        name:
            _job.rule
        wildcard_constraints:
            task=_job.task_pattern,
            backbone=_job.backbone_pattern,
        input:
            npz=_job.tokenized("npz"),
            meta=_job.tokenized("json"),
            artifacts=_job.artifact_inputs,
            weights=_job.weights,    # a pre-trained-here backbone: the weights it loads (pretrain.smk)
        output:
            record=_job.files(paths.run_record),
            # The selected weights: what sweeps, timings and methods built on a run (artifact kind
            # "checkpoint") read. Removed once no job needs them, unless training.save_checkpoint.
            model=[keep_or_temp(path) for path in _job.files(paths.checkpoint)],
        params:
            preset=PRESET,
            device=config["device"],
            # per run: task, backbone, tokenized files, training section, method, variant, seed,
            # artifacts, summarization settings (RunJob.runs)
            runs=_job.runs,
            method_settings=_job.settings,
        log:
            _job.log,
        threads: 1
        priority: _job.size
        resources:
            gpu=_job.gpu,
            mem_mb=lambda w, attempt: 16000 * attempt,
            runtime=lambda w, attempt, n=_job.size: 480 * n * attempt,
        conda:
            "../envs/hashee.yaml"
        script:
            "../scripts/train_eval.py"
