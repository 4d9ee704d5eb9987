# One fine-tune + evaluation per task x backbone x method x variant x seed. The method comes from the
# registry (earlyexit/methods/): "full" is the no-exit reference row, "hashee" runs one hash function.


rule train_eval:
    input:
        unpack(run_inputs),
    output:
        record=paths.run_record(PRESET, W["task"], W["backbone"], W["method"], W["variant"], W["seed"]),
        # The selected weights: what sweeps, timings and methods built on this run (artifact kind
        # "checkpoint") read. Removed once no job needs them, unless training.save_checkpoint.
        model=keep_or_temp(paths.checkpoint(PRESET, W["task"], W["backbone"], W["method"], W["variant"], W["seed"])),
    params:
        preset=PRESET,
        backbone=lambda wildcards: backbone_entry(wildcards.backbone),
        training=training_params,
        device=config["device"],
        # summarization runs: generate() settings and the full model's depths (None otherwise)
        summarization=lambda wildcards: summary_run_params(wildcards),
    log:
        paths.log_file(PRESET, "train_eval", W["task"], W["backbone"], W["method"], W["variant"], f"seed{W['seed']}"),
    threads: 1
    resources:
        gpu=lambda w: gpus_for(config, config["device"]),
        mem_mb=lambda w, attempt: 16000 * attempt,
        runtime=lambda w, attempt: 480 * attempt,
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/train_eval.py"
