# Tables and figures from the collected run records, published numbers side by side.
# One name per artifact: rule table_<name> / figure_<name> -> workflow/scripts/<rule>.py ->
# results/<preset>/tables/<name>.{csv,md,tex} or figures/<preset>/<name>.{png,pdf} -> caption
# workflow/report/<name>.rst. The final targets are listed by analysis_targets() (common.smk).

# Absolute, so `snakemake --directory elsewhere` still finds the one file of published numbers.
PUBLISHED = os.path.join(workflow.basedir, "data", "published", "hashee_published.csv")


rule table_runs:
    input:
        runs=run_results(),
        sweeps=sweep_results(),
        matched=matched_results(),
    output:
        csv=report(paths.table(PRESET, "runs.csv"), caption="../report/runs.rst", category="Tables"),
        curves=report(paths.table(PRESET, "dynamic_curves.csv"), caption="../report/dynamic_curves_table.rst", category="Tables"),
    log:
        paths.log_file(PRESET, "table_runs"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/table_runs.py"


rule table_hash_functions:
    input:
        runs=rules.table_runs.output.csv,
        published=PUBLISHED,
    output:
        csv=report(paths.table(PRESET, "hash_functions.csv"), caption="../report/hash_functions.rst", category="Tables"),
        md=report(paths.table(PRESET, "hash_functions.md"), caption="../report/hash_functions.rst", category="Tables"),
        tex=report(paths.table(PRESET, "hash_functions.tex"), caption="../report/hash_functions.rst", category="Tables"),
    params:
        preset=PRESET,
    log:
        paths.log_file(PRESET, "table_hash_functions"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/table_hash_functions.py"


rule figure_score_vs_speedup:
    input:
        runs=rules.table_runs.output.csv,
        published=PUBLISHED,
    output:
        png=report(paths.figure(PRESET, "score_vs_speedup.png"), caption="../report/score_vs_speedup.rst", category="Figures"),
        pdf=report(paths.figure(PRESET, "score_vs_speedup.pdf"), caption="../report/score_vs_speedup.rst", category="Figures"),
    params:
        preset=PRESET,
    log:
        paths.log_file(PRESET, "figure_score_vs_speedup"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/figure_score_vs_speedup.py"


rule table_elue_main:
    input:
        runs=rules.table_runs.output.csv,
        published=PUBLISHED,
    output:
        csv=report(paths.table(PRESET, "elue_main.csv"), caption="../report/elue_main.rst", category="Tables"),
        md=report(paths.table(PRESET, "elue_main.md"), caption="../report/elue_main.rst", category="Tables"),
        tex=report(paths.table(PRESET, "elue_main.tex"), caption="../report/elue_main.rst", category="Tables"),
    params:
        preset=PRESET,
        # which rows the config asks for, and whether hub checkpoints are reachable ("needs hub")
        methods=config["methods"],
        requirements=config.get("requirements", {}),
        training_recipe=config["training_recipe"],     # the caption says how the rows were trained
        backbones=config["backbones"],    # a row names the backbone that ran, a stand-in as such
    log:
        paths.log_file(PRESET, "table_elue_main"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/table_elue_main.py"


rule figure_backbone_effect:
    input:
        runs=rules.table_runs.output.csv,
    output:
        png=report(paths.figure(PRESET, "backbone_effect.png"), caption="../report/backbone_effect.rst", category="Figures"),
        pdf=report(paths.figure(PRESET, "backbone_effect.pdf"), caption="../report/backbone_effect.rst", category="Figures"),
    params:
        preset=PRESET,
    log:
        paths.log_file(PRESET, "figure_backbone_effect"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/figure_backbone_effect.py"


rule table_claims:
    input:
        # the files whose paths the runs and curves tables name (per-instance outcomes), the
        # summarization runs, the timing records and the difficulty study's tables, where the preset has them
        unpack(claims_inputs),
        runs=rules.table_runs.output.csv,
        curves=rules.table_runs.output.curves,
    output:
        csv=report(paths.table(PRESET, "claims.csv"), caption="../report/claims.rst", category="Tables"),
        md=report(paths.table(PRESET, "claims.md"), caption="../report/claims.rst", category="Tables"),
        tex=report(paths.table(PRESET, "claims.tex"), caption="../report/claims.rst", category="Tables"),
    params:
        preset=PRESET,
        thresholds=config["claims"],
        # claim (i): each backbone pre-trained here with exits -> the backbone it started from
        pretrained_pairs={name: config["backbones"][name]["pretrained_from"] for name in PRETRAINED},
    log:
        paths.log_file(PRESET, "table_claims"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/table_claims.py"
