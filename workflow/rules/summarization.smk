# The paper's summarization table: BART / CPT (and their -6L baselines: backbones with halved stacks)
# fine-tuned as the full model and with HashEE on the encoder. Runs go through the shared rules
# (prepare_task, tokenize_task, fit_hash, train_eval), which dispatch on the task's kind; this file
# holds the grid (every task on every backbone of its language) and the table rule.


def summary_target_len(task):
    """Target tokens kept for a summarization task (None for the other tasks)."""
    if not is_summarization(task):
        return None
    return SUMMARIZATION["max_target_len_per_task"].get(task, SUMMARIZATION["max_target_len"])


def summary_run_params(wildcards):
    """generate() settings and the full model's depths of a summarization run (None for the others)."""
    if not is_summarization(wildcards.task):
        return None
    entry = SUMMARY_BACKBONES[wildcards.backbone]
    return {
        "generation": {**SUMMARIZATION["generation"], **SUMMARIZATION["generation_per_task"].get(wildcards.task, {})},
        "reference_decoder_layers": entry.get("reference_decoder_layers"),
    }


def summarization_runs():
    """Every summarization run record: task x backbone of its language x (method, variant) x seed."""
    return [
        paths.run_record(PRESET, task, backbone, method, variant, seed)
        for task in SUMMARY_TASKS
        for backbone, entry in SUMMARY_BACKBONES.items()
        if entry["language"] == get_task(task).language
        for method, variant in method_variants(entry.get("methods") or SUMMARIZATION["methods"])
        for seed in SUMMARIZATION["seeds"]
    ]


rule table_summarization:
    input:
        runs=summarization_runs(),
        published=PUBLISHED,
    output:
        csv=report(paths.table(PRESET, "summarization.csv"), caption="../report/summarization.rst", category="Tables"),
        md=report(paths.table(PRESET, "summarization.md"), caption="../report/summarization.rst", category="Tables"),
        tex=report(paths.table(PRESET, "summarization.tex"), caption="../report/summarization.rst", category="Tables"),
    params:
        preset=PRESET,
    log:
        paths.log_file(PRESET, "table_summarization"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/table_summarization.py"
