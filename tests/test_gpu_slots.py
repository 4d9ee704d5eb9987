"""A local run on a GPU box: at most one GPU job per visible GPU unless --resources gpu=N says otherwise,
and each GPU job on its own device; simulated on CPU with CUDA_VISIBLE_DEVICES."""

import json
import os
import subprocess
import sys

import pytest

from earlyexit.plumbing.gpu_slots import claim_gpu_slot, local_gpu_limit, visible_gpus
from tests.conftest import REPO


def test_visible_gpus_read_cuda_visible_devices(monkeypatch):
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1"}) == ["0", "1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "3, 5,-1,6"}) == ["3", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert visible_gpus({}) == []                       # no variable, no nvidia-smi: no GPU


def test_the_limit_applies_to_local_runs_that_do_not_set_it():
    assert local_gpu_limit({}, None, 2) == 2
    assert local_gpu_limit({"gpu": 8}, None, 2) is None     # --resources gpu=8: the user's word
    assert local_gpu_limit({}, 100, 2) is None              # --jobs: a cluster executor submits
    assert local_gpu_limit({}, None, 0) is None             # no GPU: the jobs' preflight says so


def test_each_claim_gets_a_free_device_and_shares_only_when_all_are_held(tmp_path):
    first, held_first = claim_gpu_slot(["3", "5"], tmp_path)
    second, held_second = claim_gpu_slot(["3", "5"], tmp_path)
    assert {first, second} == {"3", "5"} and held_first and held_second
    third, none = claim_gpu_slot(["3", "5"], tmp_path)
    assert none is None and third in ("3", "5")             # more jobs than devices: told to, so shared
    held_first.close()                                       # a job ends (or is killed): its slot frees
    assert claim_gpu_slot(["3", "5"], tmp_path)[0] == first


SNAKEFILE = """
import json, os, time
from earlyexit.plumbing.gpu_slots import apply_local_gpu_limit, pin_job_to_a_gpu
apply_local_gpu_limit(workflow)

rule all:
    input: expand("job{i}.json", i=range(4))

rule gpu_job:
    output: "job{i}.json"
    resources: gpu=1
    run:
        device = pin_job_to_a_gpu()
        start = time.time()
        time.sleep(1.5)
        with open(output[0], "w") as f:
            json.dump({"device": device, "start": start, "end": time.time()}, f)
"""


def run_jobs(tmp_path, *extra):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0,1", "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "4", "--quiet", *extra], cwd=tmp_path, env=env,
                   check=True, capture_output=True, timeout=300)
    return [json.loads((tmp_path / f"job{i}.json").read_text()) for i in range(4)]


def overlapping(jobs):
    return [(a, b) for i, a in enumerate(jobs) for b in jobs[i + 1:] if a["start"] < b["end"] and b["start"] < a["end"]]


@pytest.mark.slow
def test_a_local_run_puts_one_gpu_job_on_each_device(tmp_path):
    jobs = run_jobs(tmp_path)
    assert {j["device"] for j in jobs} == {"0", "1"}
    assert all(a["device"] != b["device"] for a, b in overlapping(jobs))    # never two jobs on one GPU
    assert max(sum(j["start"] <= t < j["end"] for j in jobs) for t in (j["start"] for j in jobs)) <= 2
