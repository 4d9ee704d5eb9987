# ConsistentEE for generation (issue 19; consistentee-spec section 8): config section llm_generation.
# Data per task -> one shared multi-exit LM per task x backbone x seed (base LM + per-layer heads,
# rule llm_exits) -> one run per generation_lm method x variant of the registry (rule llm_run: CALM's
# thresholds, the truncations, the full model, ConsistentEE's own stages) -> table and figure.
# Wildcards have their own names (lmtask, ...): this grid is not the encoder grid; its helpers are
# at the end of common.smk.

from functools import partial

llm_targets = partial(paths.llm_targets, PRESET, LLM["enabled"])


wildcard_constraints:
    lmtask=_alternatives(LLM_TASKS),
    lmbackbone=_alternatives(LLM_BACKBONES),
    lmmethod=_alternatives(dict.fromkeys(m for m, _ in LLM_RUNS)),
    lmvariant=_alternatives(dict.fromkeys(v for _, v in LLM_RUNS)),


rule llm_data:
    output:
        train=paths.llm_split(PRESET, "{lmtask}", "train"),
        dev=paths.llm_split(PRESET, "{lmtask}", "dev"),
        test=paths.llm_split(PRESET, "{lmtask}", "test"),
    params:
        synthetic=LLM["synthetic"],
        hub=lambda w: w.lmtask not in SYNTHETIC_TASKS,
    log:
        paths.log_file(PRESET, "llm_data", "{lmtask}"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/llm_data.py"


rule llm_exits:
    input:
        unpack(llm_splits),
    output:
        model=keep_or_temp(paths.llm_exits(PRESET, "{lmtask}", "{lmbackbone}", "{seed}", "pt")),
        summary=paths.llm_exits(PRESET, "{lmtask}", "{lmbackbone}", "{seed}", "json"),
    params:
        backbone=lambda w: LLM_BACKBONES[w.lmbackbone],
        settings=LLM_SETTINGS,
        device=LLM["device"],
    log:
        paths.log_file(PRESET, "llm_exits", "{lmtask}", "{lmbackbone}", "seed{seed}"),
    threads: 1
    resources:
        gpu=llm_gpus,
        mem_mb=lambda w, attempt: 64000 * attempt,
        runtime=lambda w, attempt: 1440 * attempt,
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/llm_exits.py"


rule llm_run:
    input:
        unpack(llm_splits),
        exits=paths.llm_exits(PRESET, "{lmtask}", "{lmbackbone}", "{seed}", "pt"),
    output:
        record=paths.llm_run(PRESET, "{lmtask}", "{lmbackbone}", "{lmmethod}", "{lmvariant}", "{seed}"),
    params:
        preset=PRESET,
        backbone=lambda w: LLM_BACKBONES[w.lmbackbone],
        settings=LLM_SETTINGS,
        device=LLM["device"],
    log:
        paths.log_file(PRESET, "llm_run", "{lmtask}", "{lmbackbone}", "{lmmethod}", "{lmvariant}", "seed{seed}"),
    threads: 1
    resources:
        gpu=llm_gpus,
        mem_mb=lambda w, attempt: 64000 * attempt,
        runtime=lambda w, attempt: 720 * attempt,
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/llm_run.py"


rule table_llm_early_exit:
    input:
        runs=llm_records(),
    output:
        csv=report(paths.table(PRESET, "llm_early_exit.csv"), caption="../report/llm_early_exit.rst", category="Tables"),
        md=report(paths.table(PRESET, "llm_early_exit.md"), caption="../report/llm_early_exit.rst", category="Tables"),
        tex=report(paths.table(PRESET, "llm_early_exit.tex"), caption="../report/llm_early_exit.rst", category="Tables"),
    params:
        preset=PRESET,
    log:
        paths.log_file(PRESET, "table_llm_early_exit"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/table_llm_early_exit.py"


rule figure_llm_early_exit:
    input:
        runs=llm_records(),
    output:
        png=report(paths.figure(PRESET, "llm_early_exit.png"), caption="../report/llm_early_exit_figure.rst", category="Figures"),
        pdf=report(paths.figure(PRESET, "llm_early_exit.pdf"), caption="../report/llm_early_exit_figure.rst", category="Figures"),
    params:
        preset=PRESET,
    log:
        paths.log_file(PRESET, "figure_llm_early_exit"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/figure_llm_early_exit.py"
