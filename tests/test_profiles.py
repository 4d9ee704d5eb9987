"""Machine profiles and per-job resources: the documented cluster command really gets the cluster
settings (parsed with Snakemake's own CLI parser), every transformer-training job asks for a GPU,
memory and runtime grow on retry, and each job checks its own node (earlyexit.plumbing.preflight)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from difficulty import settings as dsettings
from earlyexit.methods import backbone_runs, with_training_runs
from earlyexit.plumbing import preflight

REPO = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def cli_args(monkeypatch, *argv):
    """The arguments Snakemake itself would run with for `snakemake ARGV` in the repository root."""
    from snakemake.cli import parse_args

    monkeypatch.chdir(REPO)
    _parser, args = parse_args(list(argv))
    return args


def test_no_workflow_profile_is_picked_up_automatically(monkeypatch, capsys):
    # A profiles/default next to the Snakefile would be merged into every run and win over --profile.
    assert not (REPO / "profiles" / "default").exists()
    cli_args(monkeypatch, "--profile", "profiles/slurm", "-n")
    assert "workflow specific profile" not in capsys.readouterr().err


def test_slurm_profile_settings_win(monkeypatch):
    args = cli_args(monkeypatch, "--profile", "profiles/slurm", "-n")
    assert args.executor == "slurm"
    assert args.latency_wait == 60
    assert args.jobs == 100 and args.retries == 1
    threads = {rule: res.value for rule, res in args.set_threads.items()}
    assert threads["train_eval"] == 8 and threads["fit_hash"] == 4
    assert args.default_resources["slurm_partition"].raw == "cpu"
    assert args.set_resources["train_eval"]["slurm_partition"].raw == "gpu"


def test_local_commands_get_local_settings(monkeypatch):
    for argv in (["--profile", "profiles/local"], []):
        args = cli_args(monkeypatch, *argv, "--cores", "2", "--configfile", "config/presets/demo.yaml", "-n")
        assert args.executor in (None, "local")
        assert args.latency_wait == 5
        assert not args.set_threads  # the rules' own threads: 1 per job
    assert cli_args(monkeypatch, "--profile", "profiles/local", "-n").rerun_incomplete


def snakemake(*args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=REPO, capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    return result.stdout + result.stderr


def dry_run_jobs(output: str) -> list[dict]:
    """(rule, wildcards, resources) of every job a non-quiet dry run prints."""
    jobs = []
    for line in output.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            jobs.append({"rule": m.group(1), "wildcards": {}, "resources": {}})
        elif jobs and (m := re.match(r"^\s+(wildcards|resources): (.*)$", line)):
            jobs[-1][m.group(1)] = dict(item.split("=", 1) for item in m.group(2).split(", "))
    return jobs


def trains_transformer(job: dict) -> bool:
    """Trains or runs a transformer (inference sweeps and timings included): needs the GPU."""
    rule, predictor = job["rule"], job["wildcards"].get("predictor")
    return (rule in ("train_eval", "sweep_exits", "time_inference", "difficulty_sentence_data", "difficulty_token_data",
                     "llm_exits", "llm_run")
            or (rule in ("difficulty_predict", "difficulty_human_predict") and predictor in ("bert", "linear-b")))


@pytest.fixture(scope="module")
def paper_slurm_jobs():
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[dev]' installs it")
    # A dry run plans the jobs and their resources; it submits nothing, so sbatch is not needed.
    return dry_run_jobs(snakemake("--profile", "profiles/slurm", "-n"))


def test_slurm_dry_run_lists_the_paper_dag(paper_slurm_jobs):
    counts = {}
    summarization = set(PAPER["summarization"]["tasks"])   # its grid: tests/test_workflow.py
    for job in paper_slurm_jobs:
        if job["wildcards"].get("task") not in summarization:
            counts[job["rule"]] = counts.get(job["rule"], 0) + 1
    runs = sum(len(with_training_runs(PAPER, backbone_runs(PAPER, backbone))) for backbone in PAPER["backbones"])
    assert counts["train_eval"] == len(PAPER["tasks"]) * runs * len(PAPER["seeds"])
    assert counts["prepare_task"] == len(PAPER["tasks"])
    assert counts["tokenize_task"] == len(PAPER["tasks"]) * len(PAPER["backbones"])
    diff = dsettings.validated(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))["difficulty"]
    seeds = len(diff["seeds"])
    assert counts["difficulty_predict"] == seeds * sum(len(diff[level]["predictors"]) for level in ("sentence", "token"))
    assert counts["difficulty_human_predict"] == seeds * len(diff["human"]["predictors"])
    for rule in ("fit_hash", "difficulty_human_data", "difficulty_sentence_data", "difficulty_token_data",
                 "table_runs", "table_hash_functions", "figure_score_vs_speedup", "table_elue_main",
                 "figure_backbone_effect", "table_difficulty_model",
                 "table_difficulty_human", "figure_difficulty_human_accuracy", "figure_difficulty_layer_labels", "all"):
        assert counts.get(rule), rule


def test_every_transformer_training_job_requests_a_gpu_on_the_gpu_partition(paper_slurm_jobs):
    gpu_rules = set()
    for job in paper_slurm_jobs:
        resources = job["resources"]
        if trains_transformer(job):
            gpu_rules.add(job["rule"])
            assert resources.get("gpu") == "1", job
            assert resources["slurm_partition"] == "gpu", job
        else:
            assert resources.get("gpu", "0") == "0", job
            assert resources["slurm_partition"] == "cpu", job
    assert gpu_rules == {"train_eval", "sweep_exits", "time_inference", "difficulty_sentence_data", "difficulty_token_data",
                         "difficulty_predict", "difficulty_human_predict", "llm_exits", "llm_run"}
    # the rule's runtime, not the profile's default, reaches the job
    assert {job["resources"]["runtime"] for job in paper_slurm_jobs if job["rule"] == "train_eval"} == {"480"}


def test_demo_preset_asks_for_no_gpu():
    # --forceall: every job of the DAG, also in a checkout where the demo has already run
    jobs = dry_run_jobs(snakemake("--profile", "profiles/local", "--cores", "2", "-n", "--forceall",
                                  "--configfile", "config/presets/demo.yaml"))
    assert jobs and all(job["resources"].get("gpu", "0") == "0" for job in jobs)


def test_memory_and_runtime_grow_with_attempt(monkeypatch):
    from snakemake.api import SnakemakeApi
    from snakemake.iocontainers import InputFiles, Wildcards
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings, StorageSettings

    monkeypatch.chdir(REPO)
    with SnakemakeApi(OutputSettings()) as api:
        workflow_api = api.workflow(resource_settings=ResourceSettings(cores=1), config_settings=ConfigSettings(),
                                    storage_settings=StorageSettings(), snakefile=REPO / "Snakefile", workdir=REPO)
        workflow_api.dag(dag_settings=DAGSettings())  # parses the Snakefile
        workflow = workflow_api._workflow
        cases = {
            "train_eval": {"task": "SST-2", "backbone": "bert-base", "method": "full", "variant": "default", "seed": "2021"},
            "fit_hash": {"task": "SST-2", "backbone": "bert-base", "hash": "mi", "fit": "train"},
            "difficulty_predict": {"dlevel": "sentence", "predictor": "bert", "seed": "1"},
            "difficulty_sentence_data": {},
        }
        for rule_name, wildcards in cases.items():
            rule = workflow.get_rule(rule_name)
            first, second = (rule.expand_resources(Wildcards(fromdict=wildcards), InputFiles(), attempt)
                             for attempt in (1, 2))
            assert second["mem_mb"] == 2 * first["mem_mb"], rule_name
            assert second["runtime"] == 2 * first["runtime"], rule_name


# --- the checks each job runs on its own node ---------------------------------------------------

def test_gpu_needed_follows_requirements_and_device():
    assert preflight.gpu_needed({"gpu": True}, "auto")
    assert not preflight.gpu_needed({"gpu": False}, "auto")
    assert not preflight.gpu_needed({"gpu": True}, "cpu")
    assert preflight.gpu_needed({}, "cuda:0")
    assert preflight.gpus_for(PAPER, PAPER["device"]) == 1
    assert preflight.gpus_for(PAPER, PAPER["device"], trains_transformer=False) == 0


def test_uses_hub_finds_nested_hub_sources():
    assert preflight.uses_hub("hub")
    assert preflight.uses_hub(None, {"train_data": {"source": "hub", "hub_id": "x"}})
    assert not preflight.uses_hub("synthetic", {"source": "random"}, None)


class FakeJob:
    def __init__(self, tmp_path, gpu):
        self.resources = type("Resources", (), {"gpu": gpu})()
        self.log = [str(tmp_path / "logs" / "job.log")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a node without a GPU")
def test_job_asking_for_a_gpu_on_a_cpu_node_fails_in_one_line(tmp_path):
    with pytest.raises(SystemExit) as stop:
        preflight.check_job(FakeJob(tmp_path, gpu=1), {"source": "random"})
    message = str(stop.value.code)
    assert message.startswith("preflight:") and "GPU" in message and "\n" not in message
    assert (tmp_path / "logs" / "job.log").read_text().strip() == message
    preflight.check_job(FakeJob(tmp_path, gpu=0), {"source": "random"})  # a CPU job passes


def test_hub_job_without_network_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://no-such-host.invalid")
    with pytest.raises(SystemExit) as stop:
        preflight.check_job(FakeJob(tmp_path, gpu=0), "hub")
    assert "no-such-host.invalid" in str(stop.value.code) and "\n" not in str(stop.value.code)
    preflight.check_job(FakeJob(tmp_path, gpu=0), "synthetic")  # no download, no check
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the HF cache only: nothing to resolve
    preflight.check_job(FakeJob(tmp_path, gpu=0), "hub")
