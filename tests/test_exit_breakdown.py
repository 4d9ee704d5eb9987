"""benchmarks/bench_exit_breakdown.py: the clock reaches the exit heads the runner calls (their
plain functions, `lean_head`), not only module calls."""

import importlib.util
import json
import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(_BENCH))
_SPEC = importlib.util.spec_from_file_location("bench_exit_breakdown", _BENCH / "bench_exit_breakdown.py")
bench_exit_breakdown = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench_exit_breakdown)


def test_every_method_s_heads_are_clocked_in_place_and_in_its_reference(tmp_path):
    out = tmp_path / "breakdown.json"
    # no --threads: the benchmark would set the process-wide thread count for the tests after this one
    bench_exit_breakdown.main(["--backbone", "tiny", "--instances", "4", "--repeats", "2",
                               "--methods", "fastbert", "consistentee", "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [row["method"] for row in rows] == ["fastbert", "consistentee"]
    for row in rows:
        method, reference = row["with_exits"], row["reference"]
        # L - 1 heads that do not answer plus the last, against the reference's last head alone
        assert method["heads"] > reference["heads"] > 0
        assert method["rule"] > 0 and reference["rule"] == 0
        assert method["layers"] > 0 and reference["layers"] > 0
