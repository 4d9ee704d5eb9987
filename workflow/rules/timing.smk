# The actual-inference-time comparison (paper figure): per task x backbone, the first seed's saved
# weights of the full model, every HashEE run and every dynamic method at its curve's matched
# operating point (rule match_operating_points; the matched run's weights where a training-time
# sweep gives the curve several runs), timed over the test split at each batch size on the machine that runs the job
# (earlyexit/cost/timing.py: one runner and the backbone's fast linear path for every method, the plain HF
# model as a reference point; config timing.dtype bfloat16 for bf16 inference); then wall-clock
# speed-up against FLOPs speed-up in one figure.
# Timings share the machine with whatever else runs at the same time: for clean numbers, run the
# rest first with the checkpoints kept, `snakemake --cores N --notemp --omit-from time_inference`
# (without --notemp snakemake deletes the temp() checkpoints the timing reads as soon as nothing
# else in that run needs them), then the timing alone, `snakemake --cores 1`.


rule time_inference:
    input:
        unpack(timing_inputs),
    output:
        timing=paths.timing(PRESET, W["task"], W["backbone"]),
    params:
        preset=PRESET,
        seed=config["seeds"][0],
        cases=timing_cases,
        backbone=lambda wildcards: backbone_entry(wildcards.backbone),
        # the shared training section: inference reads only its eval settings and max_seq_len
        training=lambda w: training_params(w, None),
        method_settings={m: method_settings(m) for m, _ in RUNS if get_method(m).family == "dynamic"},
        timing=config["timing"],
        device=config["device"],
    log:
        paths.log_file(PRESET, "time_inference", W["task"], W["backbone"]),
    threads: config["timing"]["threads"]
    resources:
        gpu=lambda w: gpus_for(config, config["device"]),
        mem_mb=lambda w, attempt: 8000 * attempt,
        runtime=lambda w, attempt: 120 * attempt,
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/time_inference.py"


rule figure_inference_time:
    input:
        timing=[paths.timing(PRESET, task, backbone) for task in timing_tasks() for backbone in timing_backbones()],
    output:
        png=report(paths.figure(PRESET, "inference_time.png"), caption="../report/inference_time.rst", category="Figures"),
        pdf=report(paths.figure(PRESET, "inference_time.pdf"), caption="../report/inference_time.rst", category="Figures"),
    params:
        preset=PRESET,
    log:
        paths.log_file(PRESET, "figure_inference_time"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/figure_inference_time.py"


rule table_inference_time:
    input:
        timing=[paths.timing(PRESET, task, backbone) for task in timing_tasks() for backbone in timing_backbones()],
    output:
        csv=report(paths.table(PRESET, "inference_time.csv"), caption="../report/inference_time_table.rst", category="Tables"),
        md=report(paths.table(PRESET, "inference_time.md"), caption="../report/inference_time_table.rst", category="Tables"),
        tex=report(paths.table(PRESET, "inference_time.tex"), caption="../report/inference_time_table.rst", category="Tables"),
    params:
        preset=PRESET,
    log:
        paths.log_file(PRESET, "table_inference_time"),
    conda:
        "../envs/hashee.yaml"
    script:
        "../scripts/table_inference_time.py"
