# Multi-exit continued pre-training (issue 20): ElasticBERT's objective, the MLM (and SOP) loss at every
# layer's output, summed, with gradient equilibrium, on a corpus of text the evaluations never score
# (config section pretraining). Its output is a backbone like any other (source: pretrained-here), which
# every job on that backbone loads (input function backbone_weights in common.smk).


rule pretrain_backbone:
    input:
        unpack(pretraining_inputs),
    output:
        model=directory(paths.pretrained_model(PRESET, W["backbone"])),
        record=paths.pretrained_record(PRESET, W["backbone"]),
    wildcard_constraints:
        backbone=_alternatives(PRETRAINED),
    params:
        base=lambda wildcards: backbone_entry(wildcards.backbone)["base"],
        settings=pretraining_settings(),
        train_tasks=CORPUS_TASKS,
        scored_tasks=scored_tasks(),
        elue_scored=[task for task, _ in elue_scored_files()],
        state=lambda wildcards: paths.pretraining_state(PRESET, wildcards.backbone),
    log:
        paths.log_file(PRESET, "pretrain_backbone", W["backbone"]),
    threads: 1
    priority: UNLOCKS_TRAINING      # every run on the backbone waits for it
    resources:
        mem_mb=lambda w, attempt: 8000 * attempt,
        # minutes: about 2 s per step of 32 texts on one CPU thread (bf16), 5 s in fp32
        runtime=lambda w, attempt: attempt * (30 + (config["pretraining"]["steps"] + config["pretraining"]["head_steps"]) // 10),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/pretrain_backbone.py"
