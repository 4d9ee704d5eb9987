# The paper's summarization table: BART / CPT (and their -6L baselines: backbones with halved stacks)
# fine-tuned as the full model and with HashEE on the encoder. Runs go through the shared rules
# (prepare_task, tokenize_task, fit_hash, train_eval), which dispatch on the task's kind; this file
# holds the table rule; the grid (every task on every backbone of its language) is summarization_runs()
# in common.smk.


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
