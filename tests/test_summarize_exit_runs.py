"""benchmarks/summarize_exit_runs.py: the exit-overhead verdict over repeated benchmark runs."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(_BENCH))
_SPEC = importlib.util.spec_from_file_location("summarize_exit_runs", _BENCH / "summarize_exit_runs.py")
summarize_exit_runs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(summarize_exit_runs)


def _run(folder: Path, name: str, ratios: dict) -> None:
    rows = [{"method": m, "batch_size": 1, "case": c, "ratio": r, "seconds": 1.0, "reference_seconds": r}
            for (m, c), r in ratios.items()]
    (folder / name).write_text(json.dumps({"rows": rows}))


def test_five_runs_above_are_met_five_below_missed_and_a_split_undecided(tmp_path):
    per_run = [(0.91, 0.88, 0.93), (0.92, 0.87, 0.86), (0.95, 0.85, 0.95), (0.90, 0.89, 0.88), (0.94, 0.86, 0.91)]
    for run, (a, b, c) in enumerate(per_run, start=1):
        _run(tmp_path, f"run-{run}.json", {("pabee", "no-exit"): a, ("fastbert", "no-exit"): b,
                                           ("deebert", "no-exit"): c})
    lines = summarize_exit_runs.summarize(summarize_exit_runs.load_ratios(tmp_path), 0.9, 0.05)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert rows["pabee"].endswith("| 0.920 | 5/5 | 0.031 / 1.000 | met |")        # 0.90 counts as reached
    assert rows["fastbert"].endswith("| 0.870 | 0/5 | 1.000 / 0.031 | missed |")
    assert rows["deebert"].endswith("| 0.910 | 3/5 | 0.500 / 0.812 | undecided |")
    assert "0.930 0.860 0.950 0.880 0.910" in rows["deebert"]                     # every run, in order


def test_runs_are_listed_by_run_number_not_by_file_name(tmp_path):
    for run in (10, 2, 1):                      # by name: run-1, run-10, run-2
        _run(tmp_path, f"run-{run}.json", {("fastbert", "no-exit"): 0.8 + run / 100})
    lines = summarize_exit_runs.summarize(summarize_exit_runs.load_ratios(tmp_path), 0.9, 0.05)
    assert "| 0.810 0.820 0.900 |" in lines[2]


def test_a_file_that_is_not_a_benchmark_result_is_named(tmp_path):
    (tmp_path / "notes.json").write_text(json.dumps({"runs": []}))
    with pytest.raises(SystemExit, match="notes.json: not a bench_exit_overhead.py result"):
        summarize_exit_runs.load_ratios(tmp_path)
