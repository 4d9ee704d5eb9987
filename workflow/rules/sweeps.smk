# Dynamic early exit: train once (rule train_eval saves the selected weights), then score that
# checkpoint at every value of the method's sweep on dev and test (earlyexit/dynamic/sweeps.py), never
# retraining. Sweep files hold points only: the local rule match_operating_points picks, per curve
# (every run of a method's variant, e.g. every alpha of ConsistentEE, and every seed), the matched
# operating point by the dev exact-FLOPs speed-up (earlyexit/dynamic/matching.py), so a published number
# edited reruns only it and the tables. The matched point per run goes to runs.csv (table_runs),
# every point to dynamic_curves.csv; the dynamic table and the curves figure read those.


for _job in run_jobs("sweep_exits", dynamic_runs):

    rule:
        name:
            _job.rule
        wildcard_constraints:
            task=_job.task_pattern,
            backbone=_job.backbone_pattern,
        input:
            npz=_job.tokenized("npz"),
            meta=_job.tokenized("json"),
            model=_job.files(paths.checkpoint),
            weights=_job.weights,    # a pre-trained-here backbone: the weights it loads (pretrain.smk)
        output:
            sweep=_job.files(paths.sweep),
        params:
            preset=PRESET,
            method_settings=_job.settings,
            runs=_job.runs,   # per run: task, backbone, tokenized files, training section, ... (RunJob.runs)
            device=config["device"],
        log:
            _job.log,
        threads: 1
        resources:
            gpu=_job.gpu,
            mem_mb=lambda w, attempt: 8000 * attempt,
            runtime=lambda w, attempt, n=_job.size: 120 * n * attempt,
        conda:
            "../envs/hashee.yaml"
        script:
            "../scripts/sweep_exits.py"


localrules:
    match_operating_points,


rule match_operating_points:
    input:
        sweeps=curve_sweeps,
        published=PUBLISHED,
    output:
        matched=paths.matched(PRESET, W["task"], W["backbone"], W["method"], W["variant"]),
    params:
        target_speedup=config["dynamic"]["target_speedup"],
    log:
        paths.log_file(PRESET, "match_operating_points", W["task"], W["backbone"], W["method"], W["variant"]),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/match_operating_points.py"


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
        training_recipe=config["training_recipe"],     # the caption says how the rows were trained
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
