# Task splits in the suite's normalized TSV (text_a, text_b, label), then tokenised per backbone.


rule prepare_task:
    input:
        elue_files,
    output:
        train=paths.split_file(PRESET, W["task"], "train"),
        dev=paths.split_file(PRESET, W["task"], "dev"),
        test=paths.split_file(PRESET, W["task"], "test"),
        summary=paths.data_summary(PRESET, W["task"]),
    params:
        source=lambda wildcards: task_source(data_config(wildcards.task), wildcards.task),
        data_dir=config["data"]["data_dir"],
        hub_cache=config["data"]["hub_cache"],
        hub_revision=config["data"]["hub_revision"],
        synthetic_sizes=lambda wildcards: SUMMARIZATION["synthetic_sizes"] if is_summarization(wildcards.task) else config["data"]["synthetic_sizes"],
        seed=config["data"]["seed"],
        # classification and regression tasks only: summarization sizes are the summarization section's
        subsample=lambda wildcards: {} if is_summarization(wildcards.task) else task_subsample(config["data"], wildcards.task),
        split_files=lambda wildcards: task_split_files(config["data"], wildcards.task),
    log:
        paths.log_file(PRESET, "prepare_task", W["task"]),
    priority: UNLOCKS_TRAINING
    resources:
        runtime=lambda w, attempt: 120 * attempt,  # hub downloads (IMDb, SNLI) can be slow
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/prepare_task.py"


rule tokenize_task:
    input:
        train=rules.prepare_task.output.train,
        dev=rules.prepare_task.output.dev,
        test=rules.prepare_task.output.test,
    output:
        npz=paths.tokenized(PRESET, W["task"], W["backbone"], "npz"),
        meta=paths.tokenized(PRESET, W["task"], W["backbone"], "json"),
    params:
        backbone=lambda wildcards: backbone_entry(wildcards.backbone),
        max_seq_len=lambda wildcards: max_seq_len(wildcards.task),
        max_target_len=lambda wildcards: summary_target_len(wildcards.task),
    log:
        paths.log_file(PRESET, "tokenize_task", W["task"], W["backbone"]),
    priority: UNLOCKS_TRAINING      # a second backbone's tokenisation at priority 0 held its runs to the end
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/tokenize_task.py"
