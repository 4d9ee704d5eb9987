# Part A of HashEE: can instance difficulty be learned? (code in difficulty/, docs/difficulty.md)
# Datasets (human-defined, model-defined sentence- and token-level) -> one run per
# dataset x predictor x seed -> the difficulty table, the human-difficulty table and two figures.
# Reads only config["difficulty"] (+ config["backbones"] for a backbone named there); the helpers
# live in difficulty.settings; paths in earlyexit.plumbing.paths.

from functools import partial

from difficulty import settings as dsettings

DIFF = dsettings.section(config)
DIFF_BACKBONES = config.get("backbones", {})
DIFF_LEVELS = dsettings.levels(DIFF)

# The study's final artifacts, for `rule all` (none when the config has no `difficulty:` section).
difficulty_targets = partial(paths.difficulty_targets, PRESET, DIFF["enabled"])


rule difficulty_human_data:
    input:
        dsettings.source_files(DIFF, "human"),
    output:
        train=paths.difficulty_data(PRESET, "human", "train.tsv"),
        test=paths.difficulty_data(PRESET, "human", "test.tsv"),
        counts=paths.difficulty_data(PRESET, "human", "counts.json"),
    params:
        data=dsettings.data_params(DIFF, "human"),
    log:
        paths.log_file(PRESET, "difficulty_human_data"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/difficulty_human_data.py"


rule difficulty_sentence_data:
    input:
        dsettings.source_files(DIFF, "sentence"),
    output:
        train=paths.difficulty_data(PRESET, "sentence", "train.tsv"),
        test=paths.difficulty_data(PRESET, "sentence", "test.tsv"),
        counts=paths.difficulty_data(PRESET, "sentence", "counts.json"),
    params:
        data=dsettings.data_params(DIFF, "sentence"),
        backbone=dsettings.annotator_backbone(DIFF, DIFF_BACKBONES, "sentence"),
        annotator=dsettings.annotator_settings(DIFF, "sentence"),
        val_fraction=dsettings.annotator_val_fraction(DIFF, "sentence"),
        device=DIFF["device"],
    log:
        paths.log_file(PRESET, "difficulty_sentence_data"),
    threads: 1
    resources:
        # the annotator fine-tunes a BERT (none runs for released data)
        gpu=lambda w: gpus_for(config, DIFF["device"], dsettings.annotator_backbone(DIFF, DIFF_BACKBONES, "sentence") is not None),
        mem_mb=lambda w, attempt: 16000 * attempt,
        runtime=lambda w, attempt: 240 * attempt,
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/difficulty_sentence_data.py"


rule difficulty_token_data:
    input:
        dsettings.source_files(DIFF, "token"),
    output:
        train=paths.difficulty_data(PRESET, "token", "train.tsv"),
        test=paths.difficulty_data(PRESET, "token", "test.tsv"),
        counts=paths.difficulty_data(PRESET, "token", "counts.json"),
    params:
        data=dsettings.data_params(DIFF, "token"),
        backbone=dsettings.annotator_backbone(DIFF, DIFF_BACKBONES, "token"),
        annotator=dsettings.annotator_settings(DIFF, "token"),
        val_fraction=dsettings.annotator_val_fraction(DIFF, "token"),
        device=DIFF["device"],
    log:
        paths.log_file(PRESET, "difficulty_token_data"),
    threads: 1
    resources:
        # the annotator fine-tunes a BERT (none runs for released data)
        gpu=lambda w: gpus_for(config, DIFF["device"], dsettings.annotator_backbone(DIFF, DIFF_BACKBONES, "token") is not None),
        mem_mb=lambda w, attempt: 16000 * attempt,
        runtime=lambda w, attempt: 240 * attempt,
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/difficulty_token_data.py"


rule difficulty_predict:
    input:
        train=paths.difficulty_data(PRESET, "{dlevel}", "train.tsv"),
        test=paths.difficulty_data(PRESET, "{dlevel}", "test.tsv"),
    output:
        paths.difficulty_run(PRESET, "{dlevel}", "{predictor}", "{seed}"),
    wildcard_constraints:
        dlevel="sentence|token",
        predictor="|".join(dict.fromkeys(dsettings.PREDICTORS["sentence"] + dsettings.PREDICTORS["token"])),
    params:
        backbone=lambda w: dsettings.predictor_backbone(DIFF, DIFF_BACKBONES, w.dlevel, w.predictor),
        training=lambda w: dsettings.training_settings(DIFF, w.dlevel, w.predictor),
        options=lambda w: dsettings.run_options(DIFF, w.dlevel),
    log:
        paths.log_file(PRESET, "difficulty_predict", "{dlevel}", "{predictor}", "seed{seed}"),
    threads: 1
    resources:
        gpu=lambda w: gpus_for(config, DIFF["device"], w.predictor in dsettings.BERT_SIZED),
        mem_mb=lambda w, attempt: (16000 if w.predictor in dsettings.BERT_SIZED else 4000) * attempt,
        runtime=lambda w, attempt: 120 * attempt,
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/difficulty_predict.py"


rule difficulty_human_predict:
    input:
        train=rules.difficulty_human_data.output.train,
        test=rules.difficulty_human_data.output.test,
    output:
        paths.difficulty_run(PRESET, "human", "{predictor}", "{seed}"),
    wildcard_constraints:
        predictor="|".join(dsettings.PREDICTORS["human"]),
    params:
        backbone=lambda w: dsettings.predictor_backbone(DIFF, DIFF_BACKBONES, "human", w.predictor),
        training=lambda w: dsettings.training_settings(DIFF, "human", w.predictor),
        options=dsettings.run_options(DIFF, "human"),
    log:
        paths.log_file(PRESET, "difficulty_human_predict", "{predictor}", "seed{seed}"),
    threads: 1
    resources:
        gpu=lambda w: gpus_for(config, DIFF["device"], w.predictor in dsettings.BERT_SIZED),
        mem_mb=lambda w, attempt: (16000 if w.predictor in dsettings.BERT_SIZED else 4000) * attempt,
        runtime=lambda w, attempt: 120 * attempt,
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/difficulty_human_predict.py"


# Tables and figures: one name per artifact, as in analysis.smk (rule table_<name> / figure_<name>,
# script <rule>.py, results/<preset>/tables/<name>.* or figures/<preset>/<name>.*, report/<name>.rst).


rule table_difficulty_model:
    input:
        runs=[run for level in DIFF_LEVELS for run in paths.difficulty_runs(PRESET, level, DIFF[level]["predictors"], DIFF["seeds"])],
        published=PUBLISHED,   # the one file of published numbers (analysis.smk)
        # each dataset's counts.json says whether it is synthetic (then no published numbers beside it)
        **{f"counts_{level}": paths.difficulty_data(PRESET, level, "counts.json") for level in DIFF_LEVELS},
    output:
        csv=report(paths.table(PRESET, "difficulty_model.csv"), caption="../report/difficulty_model.rst", category="Difficulty"),
        md=report(paths.table(PRESET, "difficulty_model.md"), caption="../report/difficulty_model.rst", category="Difficulty"),
        tex=report(paths.table(PRESET, "difficulty_model.tex"), caption="../report/difficulty_model.rst", category="Difficulty"),
    params:
        preset=PRESET,
    log:
        paths.log_file(PRESET, "table_difficulty_model"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/table_difficulty_model.py"


rule table_difficulty_human:
    input:
        runs=paths.difficulty_runs(PRESET, "human", DIFF["human"]["predictors"], DIFF["seeds"]),
        counts=paths.difficulty_data(PRESET, "human", "counts.json"),
    output:
        csv=report(paths.table(PRESET, "difficulty_human.csv"), caption="../report/difficulty_human.rst", category="Difficulty"),
        md=report(paths.table(PRESET, "difficulty_human.md"), caption="../report/difficulty_human.rst", category="Difficulty"),
        tex=report(paths.table(PRESET, "difficulty_human.tex"), caption="../report/difficulty_human.rst", category="Difficulty"),
    params:
        preset=PRESET,
    log:
        paths.log_file(PRESET, "table_difficulty_human"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/table_difficulty_human.py"


rule figure_difficulty_human_accuracy:
    input:
        runs=paths.difficulty_runs(PRESET, "human", DIFF["human"]["predictors"], DIFF["seeds"]),
    output:
        png=report(paths.figure(PRESET, "difficulty_human_accuracy.png"), caption="../report/difficulty_human_accuracy.rst", category="Difficulty"),
        pdf=report(paths.figure(PRESET, "difficulty_human_accuracy.pdf"), caption="../report/difficulty_human_accuracy.rst", category="Difficulty"),
    log:
        paths.log_file(PRESET, "figure_difficulty_human_accuracy"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/figure_difficulty_human_accuracy.py"


rule figure_difficulty_layer_labels:
    input:
        **{f"{level}_{split}": paths.difficulty_data(PRESET, level, f"{split}.tsv") for level in DIFF_LEVELS for split in ("train", "test")},
    output:
        png=report(paths.figure(PRESET, "difficulty_layer_labels.png"), caption="../report/difficulty_layer_labels.rst", category="Difficulty"),
        pdf=report(paths.figure(PRESET, "difficulty_layer_labels.pdf"), caption="../report/difficulty_layer_labels.rst", category="Difficulty"),
    params:
        levels=DIFF_LEVELS,
    log:
        paths.log_file(PRESET, "figure_difficulty_layer_labels"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/figure_difficulty_layer_labels.py"
