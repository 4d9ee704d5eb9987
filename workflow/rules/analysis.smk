# Tables and figures from the collected run records, published numbers side by side.

# Absolute, so `snakemake --directory elsewhere` still finds the one file of published numbers.
PUBLISHED = os.path.join(workflow.basedir, "data", "published", "hashee_published.csv")


rule collect_results:
    input:
        run_results(),
    output:
        csv=report(layout.table(PRESET, "runs.csv"), caption="../report/runs.rst", category="Runs"),
    log:
        layout.log_file(PRESET, "collect_results"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/collect_results.py"


rule hash_table:
    input:
        runs=rules.collect_results.output.csv,
        published=PUBLISHED,
    output:
        csv=report(layout.table(PRESET, "hash_functions.csv"), caption="../report/hash_table.rst", category="Tables"),
        md=report(layout.table(PRESET, "hash_functions.md"), caption="../report/hash_table.rst", category="Tables"),
        tex=report(layout.table(PRESET, "hash_functions.tex"), caption="../report/hash_table.rst", category="Tables"),
    params:
        preset=PRESET,
    log:
        layout.log_file(PRESET, "hash_table"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/render_hash_table.py"


rule plot_score_vs_speedup:
    input:
        runs=rules.collect_results.output.csv,
        published=PUBLISHED,
    output:
        png=report(layout.figure(PRESET, "score_vs_speedup.png"), caption="../report/score_vs_speedup.rst", category="Figures"),
        pdf=report(layout.figure(PRESET, "score_vs_speedup.pdf"), caption="../report/score_vs_speedup.rst", category="Figures"),
    params:
        preset=PRESET,
    log:
        layout.log_file(PRESET, "plot_score_vs_speedup"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/plot_score_vs_speedup.py"

