"""benchmarks/summarize_runs.py: the verdict over repeated benchmark runs."""

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "summarize_runs", Path(__file__).resolve().parents[1] / "benchmarks" / "summarize_runs.py")
summarize_runs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(summarize_runs)


def test_sign_test_known_values():
    assert summarize_runs.sign_test_p(5, 5) == pytest.approx(1 / 32)
    assert summarize_runs.sign_test_p(4, 5) == pytest.approx(6 / 32)
    assert summarize_runs.sign_test_p(0, 3) == 1.0


def _write(folder: Path, name: str, efficiency: float, hashee_seconds: float) -> None:
    (folder / name).write_text(json.dumps({"rows": [{"efficiency": efficiency, "hashee_seconds": hashee_seconds}]}))


def test_counts_runs_at_the_target_and_pairs_versions_by_run(tmp_path):
    # the new version is faster in runs 1 and 3 only; base reaches 0.8 once, new twice
    for run, (base, new) in enumerate([(0.79, 0.82), (0.81, 0.78), (0.77, 0.85)], start=1):
        _write(tmp_path, f"bf16-base-{run}.json", base, 1 / base)
        _write(tmp_path, f"bf16-new-{run}.json", new, 1 / new)
    lines = summarize_runs.summarize(summarize_runs.load_runs(tmp_path), {"bfloat16": 0.8})
    assert lines[0].startswith("bfloat16 base: 3 runs") and "median 0.790; 1/3 runs >= 0.8" in lines[0]
    assert "median 0.820; 2/3 runs >= 0.8 (sign test p = 0.500)" in lines[1]
    assert "HashEE faster in 2/3 paired runs" in lines[2]


def test_a_file_off_the_naming_pattern_is_named_in_the_error(tmp_path):
    _write(tmp_path, "fp16-base-1.json", 0.9, 1.0)
    with pytest.raises(SystemExit, match="fp16-base-1.json: name is not"):
        summarize_runs.load_runs(tmp_path)
