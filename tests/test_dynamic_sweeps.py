"""Train once, sweep at inference (earlyexit/dynamic/sweeps.py), match afterwards (earlyexit/dynamic/matching.py):
the matched point on a hand-made curve (exact FLOPs, across a training-time sweep's runs), the
published target, a sweep file end to end (schema, known values), the runs table's matched row and
curves, and the dynamic table's cells."""

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.collect import RUN_COLUMNS, collect_runs, curves_frame, with_matched_point
from analysis.dynamic import dynamic_frame, dynamic_layout, format_cell
from analysis.published import load_published
from earlyexit.runs.experiment import run_experiment
from earlyexit.dynamic.matching import match_file, matched_index, published_target, read_matched
from earlyexit.runs.metrics import compute_metrics
from earlyexit.dynamic.sweeps import histogram, read_sweep, run_sweep
from earlyexit.training.loop import TrainConfig
from tests.conftest import tiny_backbone, tokenized_synth_nli

ONE_EPOCH = TrainConfig(lr=1e-3, batch_size=16, epochs=1, eval_batch_size=16, warmup_ratio=0.0, weight_decay=0.0,
                        grad_clip=1.0, max_seq_len=32, track_best_on_test=True, optimizer="adamw", evals_per_epoch=1,
                        bf16=False, cpu_bf16=False)


def test_matched_point_is_the_dev_speedup_closest_to_the_target():
    speedups, scores = [1.0, 1.8, 2.9, 3.3, 4.5], [90, 88, 85, 84, 70]
    assert matched_index(speedups, scores, 3.0) == 2          # |2.9 - 3| < |3.3 - 3|
    assert matched_index(speedups, scores, 3.1) == 2          # 0.2 both ways: tie -> the better dev score
    assert matched_index(speedups, [90, 88, 80, 84, 70], 3.1) == 3
    assert matched_index(speedups, scores, 100.0) == 4 and matched_index(speedups, scores, 0.0) == 0
    with pytest.raises(ValueError):
        matched_index([], [], 3.0)


def test_published_target_reads_the_elue_main_cell():
    published = load_published()
    assert published_target(published, "SST-2", "DeeBERT") == 3.4
    assert published_target(published, "SNLI", "PABEE") == 3.1
    assert published_target(published, "STS-B", "DeeBERT") is None     # the paper's "–" cell
    assert published_target(None, "SST-2", "DeeBERT") is None


def test_histogram_counts_instances_per_layer():
    assert histogram(np.array([1, 3, 3, 6]), 6) == [1, 0, 2, 0, 0, 1]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tokenized_synth_nli(tmp_path_factory.mktemp("sweep"), train_size=64)
    run = root / "runs/pabee.json"
    ckpt = root / "pabee.pt"
    run_experiment(preset="t", task_name="synth-nli", tokenized=root / "tok.npz", tokenized_meta=root / "tok.json",
                   backbone=tiny_backbone(), method="pabee", variant="default", artifacts={}, train_config=ONE_EPOCH,
                   seed=1, reference_layers=12, out_json=run, checkpoint=ckpt, device="cpu", progress=False)
    out = root / "sweeps/pabee.json"
    run_sweep(preset="t", task_name="synth-nli", tokenized=root / "tok.npz", tokenized_meta=root / "tok.json",
              backbone=tiny_backbone(), method="pabee", variant="default", seed=1, checkpoint=ckpt,
              train_config=ONE_EPOCH, reference_layers=12, out_json=out, device="cpu")
    matched = root / "matched/pabee.json"
    match_file(sweep_paths=[str(out)], published=load_published(), default_target=3.0, out_json=matched)
    return run, out, matched


def test_sweep_file_holds_every_setting_with_known_values(swept):
    _, path, matched_path = swept
    sweep = read_sweep(path)                       # schema-checked
    assert sweep["supported"] and [p["setting"]["patience"] for p in sweep["points"]] == list(range(1, 12))
    # points only: no target, no matched point (rule match_operating_points picks it)
    assert "matched" not in sweep and "target" not in sweep
    assert sweep["run"] == "default" and sweep["train_setting"] == {}
    matched = read_matched(matched_path)           # schema-checked
    # synth-nli stands in for SNLI: PABEE's published SNLI speed-up is the target, not shown anywhere
    assert matched["target"]["speedup"] == 3.1 and "PABEE on SNLI" in matched["target"]["source"]
    n, layers = len(sweep["test_tokens"]), sweep["num_layers"]
    for point in sweep["points"]:
        exits = np.array(point["test_exit_layers"])
        assert len(exits) == n and exits.min() >= min(point["setting"]["patience"] + 1, layers)
        assert point["test_exit_histogram"] == np.bincount(exits, minlength=layers + 1)[1:].tolist()
        assert point["test_mean_exit_layer"] == pytest.approx(exits.mean())
        assert point["test_layer_speedup"]["vs_own_full"] == pytest.approx(layers * n / exits.sum())
        assert point["test_layer_speedup"]["vs_reference"] == pytest.approx(12 * n / exits.sum())
        assert point["test_speedup"]["elue"] >= 12 / layers * 0.99
        # each point keeps its prediction per test instance: they give back the point's test score
        assert compute_metrics("accuracy", point["test_predictions"], sweep["test_labels"])["score"] == pytest.approx(
            point["test"]["score"])
    # patience >= L - 1 never leaves before the last layer: the own full model, exactly
    last = sweep["points"][-1]
    assert set(last["test_exit_layers"]) == {layers} and last["test_speedup"]["elue_vs_own_full"] == 1.0
    dev = [p["dev_speedup"]["flops"] for p in sweep["points"]]       # exact FLOPs, the paper's convention
    [entry] = matched["seeds"]
    assert entry["matched"]["index"] == matched_index(dev, [p["dev"]["score"] for p in sweep["points"]], 3.1)


def test_runs_table_carries_the_matched_point_and_curves_every_point(swept):
    run, path, matched_path = swept
    sweep = read_sweep(path)
    point = sweep["points"][read_matched(matched_path)["seeds"][0]["matched"]["index"]]
    row = collect_runs([str(run)], sweeps=[str(path)], matched=[str(matched_path)]).iloc[0]
    assert list(collect_runs([str(run)], sweeps=[str(path)], matched=[str(matched_path)]).columns) == RUN_COLUMNS
    assert row["test_score"] == point["test"]["score"] and row["elue_speedup"] == point["test_speedup"]["elue"]
    assert row["operating_point"] == point["label"] == f"patience={point['setting']['patience']}"
    assert row["exit_unsupported"] == ""
    curves = curves_frame([str(path)], [str(matched_path)])
    assert len(curves) == 11 and curves["matched"].sum() == 1
    with pytest.raises(ValueError, match="without a sweep file"):
        collect_runs([str(run)], sweeps=[], matched=[str(matched_path)])
    with pytest.raises(ValueError, match="without a matched-point file"):
        collect_runs([str(run)], sweeps=[str(path)], matched=[])


def _hand_made_run(sweep: dict, run_setting: dict | None, seed: int, flops: list, elue: list, scores: list) -> dict:
    """A copy of a real sweep file as another run (training-time setting) and seed, its dev points'
    exact-FLOPs and ELUE speed-ups and dev scores set by hand."""
    out = copy.deepcopy(sweep)
    out["seed"], out["train_setting"] = seed, dict(run_setting or {})
    out["run"] = "default" + "".join(f"@{k}={v:g}" for k, v in out["train_setting"].items())
    out["points"] = out["points"][:len(flops)]
    for point, f, e, score in zip(out["points"], flops, elue, scores, strict=True):
        point["dev_speedup"] = {**point["dev_speedup"], "flops": f, "elue": e}
        point["dev"] = {**point["dev"], "score": score}
    return out


def test_matched_point_is_the_exact_flops_closest_across_a_curves_runs_per_seed(swept, tmp_path):
    """One curve of two training-time runs x two seeds, target 3.1 (PABEE's published SNLI
    speed-up): per seed, the point closest by DEV EXACT FLOPs, whichever run holds it, never the
    ELUE-protocol count's choice."""
    _, path, _ = swept
    real = read_sweep(path)
    files = {
        # seed 1: ELUE-closest is run a's first point (3.0), exact-FLOPs-closest run b's first (2.9)
        ("a", 1): _hand_made_run(real, {"alpha": 0.0}, 1, [1.5, 2.0], [3.0, 4.0], [80, 70]),
        ("b", 1): _hand_made_run(real, {"alpha": 0.05}, 1, [2.9, 3.6], [5.0, 6.0], [75, 60]),
        # seed 2: run a's second point (3.2) is closest; a tie elsewhere would go to the better dev score
        ("a", 2): _hand_made_run(real, {"alpha": 0.0}, 2, [1.5, 3.2], [3.1, 4.0], [80, 70]),
        ("b", 2): _hand_made_run(real, {"alpha": 0.05}, 2, [2.5, 3.6], [3.1, 6.0], [75, 60]),
    }
    paths = []
    for (run, seed), content in files.items():
        paths.append(tmp_path / f"{run}/seed{seed}.json")
        paths[-1].parent.mkdir(exist_ok=True)
        paths[-1].write_text(json.dumps(content))
    out = match_file(sweep_paths=[str(p) for p in paths], published=load_published(), default_target=3.0,
                     out_json=tmp_path / "matched.json")
    assert out == read_matched(tmp_path / "matched.json") and out["target"]["speedup"] == 3.1
    assert "exact FLOPs" in out["target"]["matched_on"]
    first, second = out["seeds"]
    assert (first["seed"], first["matched"]["run"], first["matched"]["index"]) == (1, "default@alpha=0.05", 0)
    assert first["matched"]["operating_point"] == "alpha=0.05,patience=1"
    assert (second["seed"], second["matched"]["run"], second["matched"]["index"]) == (2, "default@alpha=0", 1)
    assert first["runs"] == ["default@alpha=0", "default@alpha=0.05"]
    # nothing published for the row: the config's target
    assert match_file(sweep_paths=[str(paths[0])], published=None, default_target=1.6,
                      out_json=tmp_path / "m2.json")["seeds"][0]["matched"]["index"] == 0
    # the curve table: every point of both runs, one curve (same method/variant), the alpha named
    curves = curves_frame([str(p) for p in paths], [str(tmp_path / "matched.json")])
    assert len(curves) == 8 and set(curves["variant"]) == {"default"} and curves["matched"].sum() == 2
    assert set(curves["train_setting"]) == {"alpha=0", "alpha=0.05"}
    assert curves["setting"].str.startswith("alpha=").all()


def test_unsupported_run_has_no_numbers():
    row = {c: 1.0 for c in ("dev_score", "test_score", "best_on_test_score", "flops_speedup", "elue_speedup",
                            "flops_speedup_vs_own_full", "elue_speedup_vs_own_full", "mean_exit_layer")}
    out = with_matched_point({**row, "operating_point": "", "exit_unsupported": ""},
                             {"supported": False, "unsupported": "entropy is undefined for regression"}, None)
    assert all(math.isnan(out[k]) for k in row) and out["exit_unsupported"].startswith("entropy")


def _runs(rows):
    base = {c: "" for c in RUN_COLUMNS}
    return pd.DataFrame([{**base, "preset": "t", "backbone": "b", "paper_backbone": "ElasticBERT-6L", "variant": "default",
                          "family": "dynamic", "seed": 1, **r} for r in rows])


def test_dynamic_table_cells():
    runs = _runs([
        {"method": "deebert", "label": "DeeBERT", "task": "SST-2", "paper_task": "SST-2", "synthetic": False,
         "test_score": 80.0, "elue_speedup": 3.6, "flops_speedup": 3.0, "operating_point": "entropy=0.4"},
        {"method": "deebert", "label": "DeeBERT", "task": "synth-similarity", "paper_task": "STS-B", "synthetic": True,
         "test_score": math.nan, "elue_speedup": math.nan, "flops_speedup": math.nan,
         "exit_unsupported": "entropy is undefined for regression"},
    ])
    table = dynamic_frame(runs, load_published(), "t")
    sst = table[table["task"] == "SST-2"].iloc[0]
    assert (sst["published_score"], sst["published_speedup"]) == (78.9, 3.4)
    synth = table[table["task"] == "synth-similarity"].iloc[0]
    assert math.isnan(synth["published_score"]) and synth["exit_unsupported"]
    layout = dynamic_layout(table, "t")
    cells = layout.groups[0][1][0]
    # the cell places the run by exact FLOPs (3.0x), never by the ELUE protocol's count (3.6x, an extra column)
    assert cells == ["DeeBERT", "80.0 (3.0×)", "78.9 (3.4×)", "–"]      # no published column for the stand-in
    assert (sst["flops_speedup"], sst["elue_protocol_speedup"]) == (3.0, 3.6)
    assert format_cell(math.nan, 2.0) == "–"
    # the group heading names the backbone that ran and the paper backbone it stands in for
    assert layout.groups[0][0] == "b for ElasticBERT-6L"
    same = dynamic_layout(dynamic_frame(runs.assign(backbone="ElasticBERT-6L"), load_published(), "t"), "t")
    assert same.groups[0][0] == "ElasticBERT-6L"


def test_wrappers_write_the_runs_curves_table_and_figure(swept, tmp_path):
    from tests.test_analysis import PUBLISHED, run_script

    run, path, _ = swept
    matched = str(tmp_path / "matched.json")
    run_script("match_operating_points.py", tmp_path / "m.log", input={"sweeps": [str(path)], "published": str(PUBLISHED)},
               output={"matched": matched}, params={"target_speedup": 3.0})
    out = {"csv": str(tmp_path / "runs.csv"), "curves": str(tmp_path / "dynamic_curves.csv")}
    run_script("table_runs.py", tmp_path / "r.log", input={"runs": [str(run)], "sweeps": [str(path)], "matched": [matched]},
               output=out)
    tables = {e: str(tmp_path / f"dynamic.{e}") for e in ("csv", "md", "tex")}
    run_script("table_dynamic.py", tmp_path / "t.log",
               input={"runs": out["csv"], "curves": out["curves"], "published": str(PUBLISHED)}, output=tables,
               params={"preset": "t", "training_recipe": "shared"})
    md = open(tables["md"]).read()
    assert "Every row trained with the preset's one shared recipe" in md
    assert "synth-nli (synthetic stand-in for SNLI)" in md and "(published)" not in md
    figs = {"png": str(tmp_path / "d.png"), "pdf": str(tmp_path / "d.pdf")}
    run_script("figure_dynamic_curves.py", tmp_path / "f.log",
               input={"runs": out["csv"], "curves": out["curves"], "published": str(PUBLISHED)}, output=figs,
               params={"preset": "t"})
    assert all(Path(p).stat().st_size > 1000 for p in figs.values())


def test_curves_figure_places_every_method_by_exact_flops(monkeypatch, tmp_path):
    """HashEE's square and the dynamic curve sit at the exact-FLOPs speed-up (4.8x, 2.0x), not at the
    ELUE protocol's count (6.7x, 2.5x), which ignores the K/V work of exited tokens."""
    import analysis.figure_writer
    from analysis.collect import CURVE_COLUMNS
    from analysis.dynamic import plot_dynamic_curves
    from earlyexit.methods import METHODS

    token_level = next(m for m in METHODS.values() if m.family == "token-level" and not m.generation_lm)
    dynamic = next(m for m in METHODS.values() if m.family == "dynamic")
    common = {"preset": "t", "task": "synth-nli", "paper_task": "SNLI", "synthetic": True, "backbone": "b",
              "paper_backbone": "ElasticBERT-6L", "seed": 1}
    runs = _runs([{**common, "method": token_level.name, "variant": token_level.variants[0], "label": "HashEE",
                   "family": token_level.family, "test_score": 80.0, "flops_speedup": 4.8, "elue_speedup": 6.7}])
    curve = {c: "" for c in CURVE_COLUMNS}
    curves = pd.DataFrame([{**curve, **common, "method": dynamic.name, "variant": dynamic.variants[0], "label": "x",
                            "setting": f"s={i}", "matched": i == 1, "test_score": 70.0 + i,
                            "flops_speedup": 2.0 + i, "elue_speedup": 2.5 + i} for i in range(2)])
    figures = []
    monkeypatch.setattr(analysis.figure_writer, "save_figure", lambda fig, png, pdf: figures.append(fig))
    plot_dynamic_curves(runs, curves, tmp_path / "f.png", tmp_path / "f.pdf", None, "t")
    xs = sorted(float(x) for line in figures[0].axes[0].lines for x in line.get_xdata())
    assert xs == [2.0, 3.0, 3.0, 4.8]          # the curve's two points, the matched ring, HashEE


def test_the_claims_ledger_reads_each_outcome_back_from_the_record_and_the_sweep(swept):
    """analysis/claims_io.OutcomeFiles: a run record's per-instance outcome and each sweep point's give
    back the scores the files record (what the ledger bootstraps is what the tables show)."""
    from analysis.claims_io import OutcomeFiles

    run, path, _ = swept
    outcomes, sweep = OutcomeFiles(), read_sweep(path)
    assert outcomes(str(run), None).score() == pytest.approx(json.loads(run.read_text())["test"]["score"])
    for point in sweep["points"]:
        assert outcomes(str(path), point["label"]).score() == pytest.approx(point["test"]["score"])
    with pytest.raises(ValueError, match="no sweep point 'patience=99'"):
        outcomes(str(path), "patience=99")


def test_the_claims_ledger_finds_a_point_named_with_its_training_setting(tmp_path):
    """dynamic_curves.csv names ConsistentEE's points "alpha=0.05,policy_threshold=0.5"; the sweep file
    of that alpha's run labels the point "policy_threshold=0.5": the ledger reads the same point."""
    from analysis.claims_io import OutcomeFiles
    from earlyexit.dynamic.matching import operating_point

    content = {"train_setting": {"alpha": 0.05}, "metric": "accuracy", "test_labels": [1, 0],
               "points": [{"label": "policy_threshold=0.5", "setting": {"policy_threshold": 0.5},
                           "test_predictions": [1, 1]}]}
    files = OutcomeFiles()
    files._read = lambda path, sweep=False: content                  # the file as read and checked
    name = operating_point({"alpha": 0.05}, {"policy_threshold": 0.5})
    assert name == "alpha=0.05,policy_threshold=0.5"
    assert files("s.json", name).score() == pytest.approx(50.0)
