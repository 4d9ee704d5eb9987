"""analysis/inference_time_table.py: the numbers behind the inference-time figure."""

import pytest

from analysis.inference_time_table import write_inference_time_table
from earlyexit.methods import METHODS
from earlyexit.plumbing.files import atomic_write_json
from tests.test_timing import hand_made_timing


def test_table_lists_every_method_in_registry_order_with_the_plain_forward_last(tmp_path):
    # written out of registry order, with a setting on the dynamic method and a plain HF point at batch 1 only
    record = hand_made_timing("synth-sentiment", "tiny-6L", [
        ("pabee", "default", "dynamic", 1.5, [(1, 2.5, 0.8), (32, 0.5, 1.2)]),
        ("hashee", "frequency", "token-level", 1.8, [(1, 1.6, 1.25), (32, 0.3, 2.0)]),
        ("full", "default", "static", 1.0, [(1, 2.0, 1.0), (32, 0.6, 1.0)])])
    record["entries"][0]["setting"] = {"patience": 2}
    record["plain_hf"] = {"label": "plain HF", "timings": [{"batch_size": 1, "seconds": [4.0], "median_seconds": 4.0,
                                                             "wall_speedup": 0.5}]}
    path = tmp_path / "t.json"
    atomic_write_json(path, record)
    out = {ext: tmp_path / f"inference_time.{ext}" for ext in ("csv", "md", "tex")}
    table = write_inference_time_table([path], out["csv"], out["md"], out["tex"], preset="t")

    assert len(table) == 7                     # 3 methods x 2 batch sizes + the plain forward's one
    lines = [line for line in out["md"].read_text().splitlines() if line.startswith("| ")]
    assert lines[1].startswith("| *synth-sentiment, tiny-6L*")
    labels = [line.split(" | ")[0][2:] for line in lines[2:]]
    # the full model first, the others in the registry's order (as in the figure's legend), the plain forward last
    others = sorted(["pabee", "hashee"], key=lambda m: METHODS[m].order)
    assert labels == ["full", *("pabee" if m == "pabee" else "HashEE (hashee)" for m in others), "plain HF"]
    pabee = next(line for line in lines if line.startswith("| pabee"))
    assert "patience 2" in pabee and "1.50×" in pabee and "2.500 | 0.80×" in pabee and "0.500 | 1.20×" in pabee
    # FLOPs speed-up against the own full model and against the family's reference depth (the paper's convention)
    assert "| 1.50× | 3.00× |" in pabee
    plain = next(line for line in lines if line.startswith("| plain HF"))
    assert "| 1.00× | 2.00× |" in plain          # the full model's weights: the full model's FLOPs
    assert plain.rstrip(" |").endswith("4.000 | 0.50× | – | –")
    assert "cpu (x86_64), 1 thread, float32" in out["md"].read_text()
    assert r"\multicolumn{2}" in out["tex"].read_text()


def test_no_timed_entry_is_an_error_naming_the_file(tmp_path):
    record = hand_made_timing("x", "y", [("full", "default", "static", 1.0, [(1, 2.0, 1.0)])])
    record["entries"] = []
    path = tmp_path / "empty.json"
    atomic_write_json(path, record)
    with pytest.raises(ValueError, match="empty.json"):
        write_inference_time_table([path], tmp_path / "a.csv", tmp_path / "a.md", tmp_path / "a.tex", preset="t")
    assert not (tmp_path / "a.csv").exists()
