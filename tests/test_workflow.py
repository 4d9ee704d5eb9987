"""The Snakemake DAG: paper dry run, lint, config errors, and a small demo run end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from earlyexit.methods import backbone_runs, get_method, with_training_runs
from tests.conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args, cwd=REPO, timeout=900):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_paper_preset_dry_run_lists_the_full_grid():
    result = snakemake("-n", "--cores", "8", "--quiet", "rules")
    assert result.returncode == 0, result.stderr[-2000:]
    counts = {}
    for line in (result.stdout + result.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    runs = len(config["tasks"]) * sum(len(with_training_runs(config, backbone_runs(config, b))) for b in config["backbones"]) * len(config["seeds"])
    # ElasticBERT-6L: full + HashEE x 5 hashes; ElasticBERT-12L: the same + ElasticBERT-1L..11L + BERxiT;
    # BERT: full, HashEE x 5, BERT-3L, DistilBERT, TinyBERT, HeadPrune, Theseus, DeeBERT, FastBERT, PABEE,
    # CascadeBERT, BERxiT, ConsistentEE (6 alphas of the paper's reward + the released code), the
    # multi-exit rival; RoBERTa: full, HashEE x 5, RoBERTa-3L; ALBERT-3L
    assert runs == 6 * (6 + (6 + 11 + 1) + (6 + 10 + 7 + 1) + (6 + 1) + 1) * 3
    # the other counts follow from the registry: every dynamic run swept once (BERxiT on ElasticBERT-12L;
    # on BERT five methods, ConsistentEE's 6 alphas + the released code, the rival), one matched point
    # per curve (a dynamic method's variant: all its alphas form one curve), and each hash fitted once
    # per task x backbone, or once per seed where the method's artifact says so
    per_backbone = {b: backbone_runs(config, b) for b in config["backbones"]}
    dynamic = {b: [(m, v) for m, v in pairs if get_method(m).family == "dynamic"] for b, pairs in per_backbone.items()}
    swept = sum(len(with_training_runs(config, pairs)) for pairs in dynamic.values())
    assert counts["sweep_exits"] == len(config["tasks"]) * swept * len(config["seeds"])
    assert counts["match_operating_points"] == len(config["tasks"]) * sum(map(len, dynamic.values()))
    hashes = {(b, artifact["hash"], artifact["fit"]) for b, pairs in per_backbone.items() for m, v in pairs
              for seed in config["seeds"] for artifact in get_method(m).artifacts(v, seed).values()
              if artifact["kind"] == "hash"}
    # summarization: BART and BART-6L on Reddit TIFU and CNN/DM; Chinese BART, CPT and CPT-6L on CSL and
    # TTNews; full on every backbone, HashEE (frequency) on the untruncated ones; one seed
    summarization = 2 * (2 + 1) + 2 * (2 + 2 + 1)
    assert counts["train_eval"] == runs + summarization
    # summarization: the frequency hash on Reddit TIFU and CNN/DM (BART) and on CSL and TTNews (CPT, Chinese BART)
    assert counts["fit_hash"] == len(config["tasks"]) * len(hashes) + 2 * 1 + 2 * 2
    assert counts["prepare_task"] == 6 + 4 and counts["tokenize_task"] == 6 * 5 + 2 * 2 + 2 * 3
    assert counts["table_runs"] == counts["table_hash_functions"] == counts["figure_score_vs_speedup"] == 1
    assert counts["table_elue_main"] == counts["figure_backbone_effect"] == 1
    assert counts["table_dynamic"] == counts["figure_dynamic_curves"] == 1
    assert counts["time_inference"] == 6 * 5 and counts["figure_inference_time"] == 1   # first seed per task x backbone
    assert counts["table_summarization"] == 1
    assert counts["table_claims"] == 1                  # the claims ledger, part of the default target


def count_jobs(config_path, cwd) -> dict:
    """Rule -> number of jobs a dry run of the whole DAG lists."""
    result = snakemake("-n", "--forceall", "--cores", "1", "--quiet", "rules", "--configfile", str(config_path),
                       "--directory", str(cwd))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = (line.split() for line in (result.stdout + result.stderr).splitlines())
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit()}


def dry_run_outputs(config_path, cwd) -> dict:
    """Output file -> rule of every job a dry run lists."""
    result = snakemake("-n", "--cores", "1", "--configfile", str(config_path), "--directory", str(cwd))
    assert result.returncode == 0, result.stderr[-2000:]
    outputs, rule = {}, None
    for line in result.stdout.splitlines():
        if line.startswith("rule ") or line.startswith("localrule "):
            rule = line.split()[1].rstrip(":")
        elif line.strip().startswith("output:"):
            outputs.update({path.strip(): rule for path in line.split(":", 1)[1].split(",")})
    return outputs


def test_grouping_small_jobs_changes_the_jobs_not_the_files(tmp_path):
    config = yaml.safe_load((REPO / "config" / "presets" / "demo.yaml").read_text())
    files = {}
    for grouped in (True, False, "per-task"):
        path = tmp_path / f"grouped-{grouped}.yaml"
        path.write_text(yaml.safe_dump({**config, "group_small_jobs": grouped}))
        files[grouped] = dry_run_outputs(path, tmp_path)
    assert set(files[True]) == set(files[False]) == set(files["per-task"])
    # the classification grid is grouped; summarization runs (own backbones and seeds) stay one job each
    grid = tuple(f"results/demo/{kind}/{task}/" for kind in ("runs", "hashes") for task in config["tasks"])
    runs = [f for f in files[False] if f.startswith(grid) and "/runs/" in f]
    assert {files[False][f] for f in runs} == {"train_eval"}
    # npz + json per task and fit: each hash fitted once on train, or once per seed (the random ones)
    fits = {(spec["hash"], spec["fit"]) for variant in config["methods"]["hashee"] for seed in config["seeds"]
            for spec in get_method("hashee").artifacts(variant, seed).values()}
    assert len(fits) == len(config["methods"]["hashee"])
    # every backbone (MiniLM and its multi-exit pre-trained version, issue 20) has its own grouped jobs
    assert len(config["backbones"]) == 2
    for backbone in config["backbones"]:
        job = backbone.replace("-", "_")
        ran = {m for m, _ in backbone_runs(config, backbone)}
        mine = [f for f in runs if f"/{backbone}/" in f]
        assert len(mine) == len(config["tasks"]) * len(with_training_runs(config, backbone_runs(config, backbone))) * len(config["seeds"])
        assert {files[True][f] for f in mine} == {f"train_eval_{method}_{job}" for method in ran}
        # one grouped job per method x backbone spans every task: its runs' records are one job's outputs
        full_records = [f for f in mine if f.endswith(".json") and "/full/" in f]
        assert len({f.split("/")[3] for f in full_records}) == len(config["tasks"]) > 1
        assert count_jobs(tmp_path / "grouped-True.yaml", tmp_path)[f"train_eval_full_{job}"] == 1
        # per-task: the same runs, one job per method x backbone x task, so a task added to the
        # config later adds its own jobs and leaves the others' outputs alone
        assert {files["per-task"][f] for f in mine} == {f"train_eval_{method}_{job}_{task.replace('-', '_')}"
                                                        for method in ran for task in config["tasks"]}
        assert all(files["per-task"][f].endswith(f.split("/")[3].replace("-", "_")) for f in mine)
        hashes = [f for f in files[False] if f.startswith(grid) and "/hashes/" in f and f"/{backbone}/" in f]
        own_fits = {(spec["hash"], spec["fit"]) for method, variant in backbone_runs(config, backbone)
                    if get_method(method).uses_hash for seed in config["seeds"]
                    for spec in get_method(method).artifacts(variant, seed).values()}
        assert len(hashes) == 2 * len(config["tasks"]) * len(own_fits) > 0
        assert {files[True][f] for f in hashes} == {f"fit_hashes_{job}"}
        sweeps = [f for f in files[False] if files[False][f] == "sweep_exits" and f"/{backbone}/" in f]
        assert {files[True][f] for f in sweeps} == {f"sweep_exits_{m}_{job}" for m in ran
                                                    if get_method(m).family == "dynamic"}
    # the multi-exit backbone runs only what its entry names, after the one pre-training job
    # (a method -> variants entry: HashEE with the frequency hash alone, every configured truncation)
    assert set(backbone_runs(config, "minilm-elastic-6L")) == {
        ("full", "default"), ("hashee", "frequency"), ("truncated", "1L"), ("truncated", "3L")}
    assert files[True]["results/demo/pretrained/minilm-elastic-6L/record.json"] == "pretrain_backbone"
    # every other job (summarization runs included) is the same job either way
    others = [f for f in files[False] if not files[False][f].startswith(("train_eval", "sweep_exits", "fit_hash"))]
    assert others and all(files[True][f] == files[False][f] for f in others)
    summaries = [f for f in files[False] if files[False][f] == "train_eval" and f.startswith("results/demo/runs/")
                 and f not in runs]
    assert summaries and {files[True][f] for f in summaries} == {"train_eval"}


def test_lint_is_clean():
    result = snakemake("--lint")
    assert "Lints for" not in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]


def test_bad_config_stops_with_one_line_naming_the_key(tmp_path):
    config = yaml.safe_load((REPO / "config" / "presets" / "demo.yaml").read_text())
    config["training"]["lr"] = "fast"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("-n", "--cores", "1", "--configfile", str(path))
    assert result.returncode != 0
    lines = [l for l in result.stderr.splitlines() if "config error" in l]
    assert lines == ["config error: config key 'training.lr': 'fast' is not of type 'number'"]


def test_editing_a_published_number_reruns_only_the_matching_and_what_reads_it(tmp_path):
    """Sweep files hold points only: with every output in place, a newer published CSV reruns the
    local match_operating_points jobs and the tables/figures (and the timing job, which times the
    matched point), never a training or sweep job."""
    import shutil

    workflow_copy = tmp_path / "wf"          # the published CSV lives beside the Snakefile: use a copy
    shutil.copytree(REPO / "workflow", workflow_copy / "workflow")
    shutil.copy(REPO / "Snakefile", workflow_copy / "Snakefile")
    shutil.copytree(REPO / "data" / "published", workflow_copy / "data" / "published")
    published = workflow_copy / "data" / "published" / "hashee_published.csv"
    config = yaml.safe_load((REPO / "config" / "presets" / "demo.yaml").read_text())
    config.update(preset="pub", tasks=["synth-nli"], seeds=[1],
                  methods={"full": None, "pabee": None, "consistentee": ["default"]})
    config["backbones"] = {"minilm-6L": config["backbones"]["minilm-6L"]}   # not the multi-exit one (issue 20)
    config["dynamic"] = {"consistentee": {**config["dynamic"]["consistentee"], "alpha_grid": [0.0, 0.05]}}
    config["summarization"]["enabled"] = False
    config["difficulty"]["enabled"] = False
    config["timing"]["tasks"] = None
    path = tmp_path / "pub.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    run.mkdir()
    args = ("-n", "--cores", "1", "--configfile", str(path), "--snakefile", str(workflow_copy / "Snakefile"),
            "--directory", str(run), "--rerun-triggers", "mtime")
    # every output of the DAG, older than nothing it reads
    for output in dry_run_outputs_of(snakemake(*args)):
        (run / output).parent.mkdir(parents=True, exist_ok=True)
        (run / output).touch()
    os.utime(published, (1.0e9, 1.0e9))
    assert not jobs_of(snakemake(*args)), "the DAG should be complete before the edit"
    published.touch()                        # an edited published number
    jobs = jobs_of(snakemake(*args))
    assert jobs["match_operating_points"] == 2                    # PABEE's curve, ConsistentEE's (both alphas)
    assert {"table_runs", "table_dynamic", "figure_dynamic_curves", "table_elue_main"} <= set(jobs)
    assert not [rule for rule in jobs if rule.startswith(("train_eval", "sweep_exits", "tokenize", "prepare"))], jobs


def dry_run_outputs_of(result) -> list[str]:
    assert result.returncode == 0, result.stderr[-2000:]
    return [path.strip() for line in result.stdout.splitlines() if line.strip().startswith("output:")
            for path in line.split(":", 1)[1].split(",")]


def jobs_of(result) -> dict:
    """rule -> number of jobs a dry run lists."""
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = {}
    for line in result.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
            jobs[rule] = jobs.get(rule, 0) + 1
    return jobs


@pytest.mark.slow
def test_demo_dag_end_to_end(tmp_path):
    """A cut-down demo (one task, one backbone, three methods, two seeds, a small difficulty study)
    through every rule: HashEE grid, hash table and figure, difficulty datasets, tables and figures."""
    config = yaml.safe_load((REPO / "config" / "presets" / "demo.yaml").read_text())
    config.update(preset="e2e", tasks=["synth-nli"], methods={"full": None, "hashee": ["frequency", "rand-incons"]},
                  seeds=[1, 2], dynamic={})      # no dynamic method runs: their sections would be refused
    # a tiny random backbone keeps the test short (the demo fine-tunes MiniLM)
    config["backbones"] = {"tiny-4L": {"source": "random", "num_layers": 4, "hidden_size": 64, "num_attention_heads": 4,
                                       "intermediate_size": 128, "paper_backbone": "ElasticBERT-6L"}}
    config["training"].update(lr=1e-3, batch_size=16)
    config["hash"]["num_buckets"] = 4
    config["data"]["synthetic_sizes"] = {"train": 300, "dev": 100, "test": 100}
    config["training"]["epochs"] = 2
    config["timing"] = {"tasks": None, "warmup": 0, "repeats": 1}
    config["summarization"]["enabled"] = False      # covered by tests/test_seq2seq.py
    llm = config["llm_generation"]                  # the decoder-LM rules, small (learning: tests/test_llm_training.py)
    llm["synthetic"] = {"sizes": {"train": 256, "dev": 32, "test": 8}}
    llm["stages"]["base"]["epochs"] = 2
    diff = config["difficulty"]
    diff["human"].update(size=600, test_per_class=20, predictors=["majority", "bert"])
    diff["sentence"].update(predictors=["majority", "linear-m", "linear-b"], n_train=150,
                            train_data={**diff["sentence"]["train_data"], "size": 300},
                            label_data={**diff["sentence"]["label_data"], "size": 200})
    diff["token"].update(predictors=["linear-b", "bilstm"],
                         train_data={**diff["token"]["train_data"], "size": 200},
                         label_data={**diff["token"]["label_data"], "size": 120})
    path = tmp_path / "e2e.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("--cores", "2", "--configfile", str(path), "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr[-4000:]

    runs = pd.read_csv(tmp_path / "results/e2e/tables/runs.csv")
    assert len(runs) == 6 and set(zip(runs.method, runs.variant)) == {
        ("full", "default"), ("hashee", "frequency"), ("hashee", "rand-incons")}
    # Paper convention: against 12 layers of the family, so the 4-layer full model is 3x (own model: 1x).
    full = runs[runs.method == "full"]
    assert (full.flops_speedup_vs_own_full == 1.0).all() and full.flops_speedup.between(2.9, 3.0).all()
    hashee = runs[runs.method == "hashee"]
    assert (hashee.flops_speedup > full.flops_speedup.max()).all() and (hashee.flops_speedup_vs_own_full > 1.0).all()
    record = json.loads((tmp_path / "results/e2e/runs/synth-nli/tiny-4L/hashee/frequency/seed1.json").read_text())
    assert record["paper_task"] == "SNLI" and record["synthetic"] and record["config"]["training"]["epochs"] == 2
    # A synthetic task is named as such and never sits beside published numbers.
    table = (tmp_path / "results/e2e/tables/hash_functions.md").read_text()
    assert "synth-nli (synthetic stand-in for SNLI)" in table and "published" not in table.split("\n\n", 1)[1].lower()
    tidy = pd.read_csv(tmp_path / "results/e2e/tables/hash_functions.csv")
    assert tidy.filter(like="published").isna().all().all()
    llm_table = (tmp_path / "results/e2e/tables/llm_early_exit.md").read_text()
    assert "synth-recall (synthetic)" in llm_table and "matched to ConsistentEE" in llm_table
    assert (tmp_path / "figures/e2e/llm_early_exit.pdf").stat().st_size > 0
    figures = ["score_vs_speedup", "inference_time", "difficulty_human_accuracy", "difficulty_layer_labels"]
    for name, ext in [(name, ext) for name in figures for ext in ("png", "pdf")]:
        assert (tmp_path / "figures/e2e" / f"{name}.{ext}").stat().st_size > 1000
    difficulty = pd.read_csv(tmp_path / "results/e2e/tables/difficulty_model.csv")
    ran = difficulty[difficulty.seeds > 0]
    assert len(ran) == 5 and ran.f1_mean.between(0, 100).all()   # 3 sentence- + 2 token-level predictors
    assert ran.published_f1.isna().all()                        # synthetic difficulty data: no published twin
    human = pd.read_csv(tmp_path / "results/e2e/tables/difficulty_human.csv")
    assert len(human) >= 2
    # the claims ledger: every claim has a verdict; those this cut-down preset can test are tested
    claims = pd.read_csv(tmp_path / "results/e2e/tables/claims.csv").set_index("claim")
    assert claims.verdict.isin(["holds", "fails", "inconclusive", "not run in this preset"]).all()
    assert (claims.loc[["a", "c", "d"], "verdict"] != "not run in this preset").all()
    assert claims.loc["f", "verdict"] == "not run in this preset"     # summarization is off here
    assert "claims.md" in {p.name for p in (tmp_path / "results/e2e/tables").iterdir()}
    timing = pd.read_csv(tmp_path / "results/e2e/tables/inference_time.csv")
    assert set(timing.method.dropna()) >= {"full", "hashee"} and (timing.median_seconds > 0).all()

    logs = list((tmp_path / "logs/e2e").rglob("*.log"))
    # prepare, tokenize, hashes (one job: group_small_jobs), runs (one job per method), analysis
    # (runs table, hash and main tables, two figures, the claims ledger), timing, its figure and table
    assert config["group_small_jobs"]
    hashee_jobs = 1 + 1 + 1 + 2 + 6 + 3
    seeds = len(diff["seeds"])
    # datasets (3) + tables/figures (4) + one per predictor x seed
    difficulty_jobs = 3 + 4 + seeds * sum(len(diff[level]["predictors"]) for level in ("human", "sentence", "token"))
    # decoder LM: data, the shared exits, one run per generation method x variant (full, truncations,
    # CALM, ConsistentEE's two rewards), table and figure
    llm_jobs = 1 + 1 + 5 + 2
    assert len(logs) == hashee_jobs + difficulty_jobs + llm_jobs


@pytest.mark.slow
def test_multi_exit_pretraining_feeds_every_job_of_its_backbone(tmp_path):
    """Issue 20 in the DAG, small: a tiny random backbone and its multi-exit pre-trained version (rule
    pretrain_backbone), the full model, HashEE and PABEE on both; runs.csv, the backbone
    figure and the ledger's claim (i) see both backbones."""
    config = yaml.safe_load((REPO / "config" / "presets" / "demo.yaml").read_text())
    config.update(preset="pre", tasks=["synth-sentiment"], seeds=[1], dynamic={},
                  methods={"full": None, "hashee": ["frequency"], "pabee": None})
    config["backbones"] = {
        "tiny-4L": {"source": "random", "num_layers": 4, "hidden_size": 64, "num_attention_heads": 4,
                    "intermediate_size": 128, "paper_backbone": "ElasticBERT-6L"},
        "tiny-elastic-4L": {"source": "pretrained-here", "pretrained_from": "tiny-4L"},
    }
    config["pretraining"] = {"steps": 6, "head_steps": 2, "batch_size": 16, "lr": 1e-3, "max_seq_len": 32,
                             "heldout": 50, "evaluations": 2, "eval_batch_size": 50, "checkpoint_every_steps": 3}
    config["training"].update(lr=1e-3, batch_size=16, epochs=1)
    config["hash"]["num_buckets"] = 4
    config["data"]["synthetic_sizes"] = {"train": 300, "dev": 100, "test": 100}
    config["timing"] = {"enabled": False}
    for section in ("summarization", "llm_generation", "difficulty"):
        config[section]["enabled"] = False
    path = tmp_path / "pre.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("--cores", "2", "--configfile", str(path), "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr[-4000:]

    record = json.loads((tmp_path / "results/pre/pretrained/tiny-elastic-4L/record.json").read_text())
    assert record["steps"] == 2 + 6 and record["base_name"] == "tiny-4L" and record["corpus"]["texts"] > 0
    assert len(record["heldout_after"]["mlm_loss"]) == 4 and record["dtype"].startswith("bf16")
    assert not list((tmp_path / "results/pre/pretrained/tiny-elastic-4L").glob("state*"))
    runs = pd.read_csv(tmp_path / "results/pre/tables/runs.csv")
    assert set(runs.loc[runs.method == "hashee", "backbone"]) == {"tiny-4L", "tiny-elastic-4L"}
    assert set(runs.loc[runs.method == "pabee", "backbone"]) == {"tiny-4L", "tiny-elastic-4L"}
    assert (tmp_path / "figures/pre/backbone_effect.png").stat().st_size > 1000
    claims = pd.read_csv(tmp_path / "results/pre/tables/claims.csv").set_index("claim")
    assert "tiny-elastic-4L vs tiny-4L" in claims.loc["i", "numbers"]
    assert claims.loc["i", "verdict"] in ("holds", "fails", "inconclusive")
