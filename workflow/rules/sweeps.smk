# Dynamic early exit: train once (rule train_eval saves the selected weights), then score that
# checkpoint at every value of the method's sweep on dev and test (earlyexit/sweeps.py), never
# retraining; the matched operating point per run goes to runs.csv (table_runs), every point to
# dynamic_curves.csv; the dynamic table and the curves figure read those.


rule sweep_exits:
    input:
        npz=paths.tokenized(PRESET, W["task"], W["backbone"], "npz"),
        meta=paths.tokenized(PRESET, W["task"], W["backbone"], "json"),
        model=paths.checkpoint(PRESET, W["task"], W["backbone"], W["method"], W["variant"], W["seed"]),
        published=PUBLISHED,
    output:
        sweep=paths.sweep(PRESET, W["task"], W["backbone"], W["method"], W["variant"], W["seed"]),
    params:
        preset=PRESET,
        backbone=lambda wildcards: config["backbones"][wildcards.backbone],
        training=training_params,
        method_settings=method_settings,
        target_speedup=config["dynamic"]["target_speedup"],
        device=config["device"],
    log:
        paths.log_file(PRESET, "sweep_exits", W["task"], W["backbone"], W["method"], W["variant"], f"seed{W['seed']}"),
    threads: 1
    resources:
        gpu=lambda w: gpus_for(config, config["device"]),
        mem_mb=lambda w, attempt: 8000 * attempt,
        runtime=lambda w, attempt: 120 * attempt,
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/sweep_exits.py"


rule table_dynamic:
    input:
        runs=rules.table_runs.output.csv,
        curves=paths.table(PRESET, "dynamic_curves.csv"),
        published=PUBLISHED,
    output:
        csv=report(paths.table(PRESET, "dynamic.csv"), caption="../report/dynamic.rst", category="Tables"),
        md=report(paths.table(PRESET, "dynamic.md"), caption="../report/dynamic.rst", category="Tables"),
        tex=report(paths.table(PRESET, "dynamic.tex"), caption="../report/dynamic.rst", category="Tables"),
    params:
        preset=PRESET,
    log:
        paths.log_file(PRESET, "table_dynamic"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/table_dynamic.py"


rule figure_dynamic_curves:
    input:
        runs=rules.table_runs.output.csv,
        curves=paths.table(PRESET, "dynamic_curves.csv"),
        published=PUBLISHED,
    output:
        png=report(paths.figure(PRESET, "dynamic_curves.png"), caption="../report/dynamic_curves.rst", category="Figures"),
        pdf=report(paths.figure(PRESET, "dynamic_curves.pdf"), caption="../report/dynamic_curves.rst", category="Figures"),
    params:
        preset=PRESET,
    log:
        paths.log_file(PRESET, "figure_dynamic_curves"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/figure_dynamic_curves.py"
