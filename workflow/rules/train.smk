# One fine-tune + evaluation per task x backbone x method x seed; "full" is the no-exit reference
# row, trained through the same code path with every token at the last layer.


rule train_eval:
    input:
        unpack(run_inputs),
    output:
        layout.run_record(PRESET, W["task"], W["backbone"], W["method"], W["seed"]),
    params:
        preset=PRESET,
        backbone=lambda wildcards: config["backbones"][wildcards.backbone],
        training=lambda wildcards: {
            **{k: v for k, v in config["training"].items() if k != "max_seq_len_per_task"},
            "max_seq_len": max_seq_len(wildcards.task),
        },
        device=config.get("device", "auto"),
        checkpoint=lambda w: (
            layout.checkpoint(PRESET, w.task, w.backbone, w.method, w.seed)
            if config["training"].get("save_checkpoint")
            else ""
        ),
    log:
        layout.log_file(PRESET, "train_eval", W["task"], W["backbone"], W["method"], f"seed{W['seed']}"),
    threads: 1
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/train_eval.py"
