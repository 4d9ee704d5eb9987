# The actual-inference-time comparison (paper figure): per task x backbone, the first seed's saved
# weights of the full model, every HashEE run and every dynamic method at the operating point its
# sweep matched, timed over the test split at each batch size on the machine that runs the job
# (earlyexit/timing.py); then wall-clock speed-up against FLOPs speed-up in one figure.
# Timings share the machine with whatever else runs at the same time: for clean numbers, run the
# timing jobs alone (e.g. `snakemake --cores 1 --until figure_inference_time` once the rest is done).

import types

from earlyexit.timing import timed


def timed_runs():
    """(method, variant) pairs of the config the comparison times (earlyexit.timing.timed)."""
    return [(m, v) for m, v in RUNS if timed(get_method(m))]


def timing_tasks():
    tasks = config["timing"]["tasks"]
    if tasks is None:
        return list(config["tasks"])
    unknown = [t for t in tasks if t not in config["tasks"]]
    if unknown:
        sys.exit(f"config error: config key 'timing.tasks': {unknown[0]!r} is not one of the config's tasks")
    return list(tasks)


def timing_targets():
    """The timing figure, when timing is on and the config runs a full model and something to compare."""
    methods = {m for m, _ in timed_runs()}
    if not config["timing"]["enabled"] or not any(get_method(m).reference for m in methods) or len(timed_runs()) < 2:
        return []
    return [paths.figure(PRESET, f"inference_time.{ext}") for ext in ("png", "pdf")]


def timing_cases(wildcards):
    """Per timed (method, variant): the first seed's saved weights, its artifacts and (dynamic
    methods) its sweep file, whose matched setting is timed."""
    seed = config["seeds"][0]
    cases = []
    for method, variant in timed_runs():
        run = types.SimpleNamespace(task=wildcards.task, backbone=wildcards.backbone, method=method,
                                    variant=variant, seed=str(seed))
        dynamic = get_method(method).family == "dynamic"
        cases.append({
            "method": method, "variant": variant,
            "checkpoint": paths.checkpoint(PRESET, wildcards.task, wildcards.backbone, method, variant, seed),
            "artifacts": run_artifacts(run),
            "sweep": paths.sweep(PRESET, wildcards.task, wildcards.backbone, method, variant, seed) if dynamic else None,
        })
    return cases


def timing_inputs(wildcards):
    cases = timing_cases(wildcards)
    return {
        "npz": paths.tokenized(PRESET, wildcards.task, wildcards.backbone, "npz"),
        "meta": paths.tokenized(PRESET, wildcards.task, wildcards.backbone, "json"),
        "models": [c["checkpoint"] for c in cases],
        "sweeps": [c["sweep"] for c in cases if c["sweep"]],
        "artifacts": sorted({p for c in cases for p in c["artifacts"].values()}),
    }


rule time_inference:
    input:
        unpack(timing_inputs),
    output:
        timing=paths.timing(PRESET, W["task"], W["backbone"]),
    params:
        preset=PRESET,
        seed=config["seeds"][0],
        cases=timing_cases,
        backbone=lambda wildcards: config["backbones"][wildcards.backbone],
        training=training_params,
        method_settings={m: dict(config["dynamic"].get(m, {})) for m, _ in RUNS if get_method(m).family == "dynamic"},
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
        timing=[paths.timing(PRESET, task, backbone) for task in timing_tasks() for backbone in config["backbones"]],
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
