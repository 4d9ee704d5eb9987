# One fine-tune + evaluation per task x backbone x method x variant x seed. The method comes from the
# registry (earlyexit/methods/): "full" is the no-exit reference row, "hashee" runs one hash function.


rule train_eval:
    input:
        unpack(run_inputs),
    output:
        paths.run_record(PRESET, W["task"], W["backbone"], W["method"], W["variant"], W["seed"]),
    params:
        preset=PRESET,
        backbone=lambda wildcards: config["backbones"][wildcards.backbone],
        training=training_params,
        device=config["device"],
        checkpoint=lambda w: (
            paths.checkpoint(PRESET, w.task, w.backbone, w.method, w.variant, w.seed)
            if config["training"]["save_checkpoint"]
            else ""
        ),
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
