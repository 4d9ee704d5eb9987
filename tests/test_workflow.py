"""The Snakemake DAG: paper dry run, lint, config errors, and a small demo run end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from earlyexit.methods import backbone_runs
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
    runs = len(config["tasks"]) * sum(len(backbone_runs(config, b)) for b in config["backbones"]) * len(config["seeds"])
    # full + HashEE x 5 hashes on 4 backbones; ElasticBERT-1L..11L; BERT-, RoBERTa-, ALBERT-3L; DistilBERT, TinyBERT
    assert counts["train_eval"] == runs == 6 * (4 * (1 + 5) + 11 + 3 + 2) * 3
    # frequency, mi, rand-incons once per task x backbone; rand-cons and clustered once per seed
    assert counts["fit_hash"] == 6 * 4 * (3 + 2 * 3)
    assert counts["prepare_task"] == 6 and counts["tokenize_task"] == 30
    assert counts["table_runs"] == counts["table_hash_functions"] == counts["figure_score_vs_speedup"] == 1
    assert counts["table_elue_main"] == counts["figure_backbone_effect"] == 1


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


@pytest.mark.slow
def test_demo_dag_end_to_end(tmp_path):
    """A cut-down demo (one task, one backbone, three methods, two seeds, a small difficulty study)
    through every rule: HashEE grid, hash table and figure, difficulty datasets, tables and figures."""
    config = yaml.safe_load((REPO / "config" / "presets" / "demo.yaml").read_text())
    config.update(preset="e2e", tasks=["synth-nli"], methods={"full": None, "hashee": ["frequency", "rand-incons"]},
                  seeds=[1, 2])
    config["backbones"] = {"tiny-4L": {**config["backbones"]["tiny-6L"], "num_layers": 4}}
    config["hash"]["num_buckets"] = 4
    config["data"]["synthetic_sizes"] = {"train": 300, "dev": 100, "test": 100}
    config["training"]["epochs"] = 2
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
    figures = ["score_vs_speedup", "difficulty_human_accuracy", "difficulty_layer_labels"]
    for name, ext in [(name, ext) for name in figures for ext in ("png", "pdf")]:
        assert (tmp_path / "figures/e2e" / f"{name}.{ext}").stat().st_size > 1000
    difficulty = pd.read_csv(tmp_path / "results/e2e/tables/difficulty_model.csv")
    ran = difficulty[difficulty.seeds > 0]
    assert len(ran) == 5 and ran.f1_mean.between(0, 100).all()   # 3 sentence- + 2 token-level predictors
    assert ran.published_f1.isna().all()                        # synthetic difficulty data: no published twin
    human = pd.read_csv(tmp_path / "results/e2e/tables/difficulty_human.csv")
    assert len(human) >= 2

    logs = list((tmp_path / "logs/e2e").rglob("*.log"))
    # prepare, tokenize, hashes, runs, analysis (runs table, hash and main tables, two figures)
    hashee_jobs = 1 + 1 + 2 + 6 + 5
    seeds = len(diff["seeds"])
    # datasets (3) + tables/figures (4) + one per predictor x seed
    difficulty_jobs = 3 + 4 + seeds * sum(len(diff[level]["predictors"]) for level in ("human", "sentence", "token"))
    assert len(logs) == hashee_jobs + difficulty_jobs
