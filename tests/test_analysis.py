"""Analysis layer: run records -> runs table -> hash-function table (ours beside published, like for
like) and the score-vs-speed-up figure."""

import json
import logging
import math
import runpy
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

import analysis.score_vs_speedup as score_vs_speedup
from analysis.collect import RUN_COLUMNS, collect_runs, read_runs_csv, write_runs_csv
from analysis.hash_functions import hash_functions_frame, write_hash_functions
from analysis.published import load_published
from analysis.score_vs_speedup import plot_score_vs_speedup, published_points, summarize_points
from earlyexit.data.tasks import get_task
from earlyexit.methods import get_method
from tests.conftest import REPO
from tests.table_cells import md_table, tex_table

PUBLISHED = REPO / "data" / "published" / "hashee_published.csv"
SCRIPTS = REPO / "workflow" / "scripts"
# backbone -> (paper backbone, layers, the paper's reference depth)
BACKBONES = {"tiny-6L": ("ElasticBERT-6L", 6, 12), "tiny-12L": ("ElasticBERT-12L", 12, 12), "tiny-bert": ("BERT", 4, 12)}
SYNTH_SST = "synth-sentiment (synthetic stand-in for SST-2)"


def record(task="synth-sentiment", backbone="tiny-6L", method="hashee", variant="frequency", seed=1, test=80.0,
           dev=None, speedup=2.0, preset="unit", best_on_test=True):
    """A schema-valid run record; the speed-up against the run's own full model follows from the depths."""
    spec, chosen = get_task(task), get_method(method)
    variant = "default" if method == "full" else variant
    paper_backbone, layers, reference = BACKBONES[backbone]
    own = speedup * layers / reference
    rec = {
        "preset": preset, "task": task, "paper_task": spec.paper_task, "synthetic": spec.synthetic,
        "backbone": backbone, "paper_backbone": paper_backbone, "num_layers": layers, "method": method,
        "variant": variant, "label": chosen.label(variant), "family": chosen.family, "seed": seed,
        "metric": spec.metric, "dev": {"score": test + 1.0 if dev is None else dev}, "test": {"score": test},
        "speedup": {"convention": "test", "reference_layers": reference, "flops": speedup, "elue": speedup + 0.5,
                    "flops_vs_own_full": own, "elue_vs_own_full": own + 0.5},
        "flops": {"reference_per_instance": 200.0, "full_per_instance": 200.0 * layers / reference,
                  "method_per_instance": 200.0 / speedup},
        "mean_exit_layer": layers / speedup, "train_seconds": 12.5, "eval_seconds": 0.5,
        "device": "cpu (test)", "config": {"training": {"epochs": 1}},
    }
    if best_on_test:
        rec["best_on_test"] = {"score": test + 0.5}
    return rec


def write_record(root: Path, rec: dict) -> str:
    path = (root / rec["preset"] / "runs" / rec["task"] / rec["backbone"] / rec["method"] / rec["variant"]
            / f"seed{rec['seed']}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec), encoding="utf-8")
    return str(path)


@pytest.fixture
def runs_paths(tmp_path):
    """ElasticBERT-6L. HashEE-Frequency: SST-2 seeds 1 / 2 (dev 84 / 86, test 80 / 82, speed-ups 2 / 3,
    best on test only for seed 2), synth-sentiment one seed (speed-up 4), STS-B one seed (speed-up 10;
    not a column of the paper's table). Full model on SST-2, one seed (dev 88, test 86, 2x vs 12 layers)."""
    recs = [
        record(task="SST-2", seed=2, dev=86.0, test=82.0, speedup=3.0),
        record(task="SST-2", seed=1, dev=84.0, test=80.0, speedup=2.0, best_on_test=False),
        record(task="synth-sentiment", seed=1, dev=90.0, test=89.0, speedup=4.0),
        record(task="STS-B", seed=1, test=70.0, speedup=10.0),
        record(task="SST-2", method="full", seed=1, dev=88.0, test=86.0, speedup=2.0),
    ]
    return [write_record(tmp_path, r) for r in recs]


@pytest.fixture
def published():
    return load_published(PUBLISHED)


def cell(table, backbone, variant, task):
    rows = table[(table.paper_backbone == backbone) & (table.variant == variant) & (table.task == task)]
    assert len(rows) == 1
    return rows.iloc[0]


def md_row(md: str, label: str) -> dict:
    """{column header: cell} of the Markdown row labelled `label`."""
    header, rows = md_table(md)
    matches = [row for row in rows if row[0] == label]
    assert len(matches) == 1, label
    return dict(zip(header, matches[0]))


# ------------------------------------------------------------------------------------------ collect

def test_collect_one_sorted_row_per_run(runs_paths):
    runs = collect_runs(runs_paths)
    assert list(runs.columns) == RUN_COLUMNS and len(runs) == 5
    assert list(zip(runs.task, runs.method, runs.variant, runs.seed)) == [
        ("SST-2", "full", "default", 1), ("SST-2", "hashee", "frequency", 1), ("SST-2", "hashee", "frequency", 2),
        ("STS-B", "hashee", "frequency", 1), ("synth-sentiment", "hashee", "frequency", 1)]
    first = runs.iloc[1]
    assert first.test_score == 80.0 and first.dev_score == 84.0 and first.flops_speedup == 2.0
    assert first.flops_speedup_vs_own_full == 1.0 and first.reference_layers == 12 and first.label == "Frequency"
    assert first.elue_speedup == 2.5 and first.mean_exit_layer == 3.0 and first.num_layers == 6
    assert not first.synthetic and runs.iloc[4].synthetic
    assert math.isnan(first.best_on_test_score)          # absent in that record
    assert runs.iloc[2].best_on_test_score == 82.5
    assert first.path == Path(runs_paths[1]).as_posix()
    pd.testing.assert_frame_equal(collect_runs(list(reversed(runs_paths))), runs)   # input order does not matter


def test_runs_csv_round_trip(runs_paths, tmp_path):
    runs = collect_runs(runs_paths)
    out = tmp_path / "tables" / "runs.csv"
    write_runs_csv(runs, out)
    assert out.read_text().splitlines()[0] == ",".join(RUN_COLUMNS)
    pd.testing.assert_frame_equal(read_runs_csv(out), runs)
    assert [p.name for p in out.parent.iterdir()] == ["runs.csv"]       # no temp file left behind


def test_empty_collection_has_the_columns():
    runs = collect_runs([])
    assert list(runs.columns) == RUN_COLUMNS and runs.empty


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("test"), "'test' is a required property"),
    (lambda r: r["speedup"].pop("flops"), "speedup: 'flops' is a required property"),
    (lambda r: r.update(seed="one"), "seed: 'one' is not of type 'integer'"),
    (lambda r: r.update(num_layers=0), "num_layers: 0 is less than the minimum of 1"),
])
def test_invalid_record_raises_naming_the_file(tmp_path, runs_paths, mutate, message):
    rec = record(task="synth-nli", seed=7)
    mutate(rec)
    bad = write_record(tmp_path / "bad", rec)
    with pytest.raises(ValueError) as error:
        collect_runs([*runs_paths, bad])
    assert str(error.value) == f"{bad}: {message}"


def test_unparsable_json_raises_naming_the_file(tmp_path):
    bad = tmp_path / "seed1.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=rf"^{bad}: not valid JSON"):
        collect_runs([str(bad)])


def test_two_records_of_the_same_run_are_refused(tmp_path, runs_paths):
    twin = tmp_path / "copy" / "seed1.json"
    twin.parent.mkdir()
    twin.write_text(Path(runs_paths[0]).read_text())
    with pytest.raises(ValueError, match="same run"):
        collect_runs([*runs_paths, str(twin)])


# ------------------------------------------------------------------------------------------ hash-function table

def test_dev_ours_sits_beside_published_dev_then_test_and_best_on_test(runs_paths, published, tmp_path):
    runs = collect_runs(runs_paths)
    table = hash_functions_frame(runs, published, preset="unit")
    freq = cell(table, "ElasticBERT-6L", "frequency", "SST-2")
    assert freq.n_seeds == 2 and freq.dev_mean == 85.0 and freq.dev_std == pytest.approx(math.sqrt(2))
    assert freq.test_mean == 81.0 and freq.best_on_test_mean == 82.5 and math.isnan(freq.best_on_test_std)
    assert (freq.published_dev_mean, freq.published_dev_std, freq.published_speedup) == (85.5, 0.41, 4.9)
    outs = [tmp_path / f"hash_functions.{e}" for e in ("csv", "md", "tex")]
    write_hash_functions(runs, published, *outs, preset="unit")
    header, _ = md_table(outs[1].read_text())
    i = header.index("SST-2 dev")
    assert header[i:i + 4] == ["SST-2 dev", "SST-2 dev (published)", "SST-2 test", "SST-2 best on test"]
    row = md_row(outs[1].read_text(), "Frequency")
    assert [row[h] for h in header[i:i + 4]] == ["85.0 ± 1.41", "85.5 ± 0.41", "81.0 ± 1.41", "82.5"]
    assert row["Speed-up (published)"] == "4.9×"


def test_published_cells_never_appear_for_synthetic_tasks(runs_paths, published, tmp_path):
    runs = collect_runs(runs_paths)
    table = hash_functions_frame(runs, published, preset="unit")
    synthetic = table[table.synthetic]
    assert len(synthetic) and synthetic[["published_dev_mean", "published_dev_std", "published_speedup"]].isna().all().all()
    assert cell(table, "ElasticBERT-6L", "frequency", "synth-sentiment").dev_mean == 90.0
    outs = [tmp_path / f"h.{e}" for e in ("csv", "md", "tex")]
    write_hash_functions(runs, published, *outs, preset="unit")
    header, _ = md_table(outs[1].read_text())
    synth_columns = [h for h in header if h.startswith(SYNTH_SST)]
    assert synth_columns == [f"{SYNTH_SST} dev", f"{SYNTH_SST} test", f"{SYNTH_SST} best on test"]


def test_a_synthetic_only_table_shows_no_published_number(tmp_path, published):
    """The demo's case: synthetic stand-ins only, so no published column, row or number at all."""
    paths = [write_record(tmp_path, record(task="synth-sentiment", seed=s, speedup=4.9)) for s in (1, 2)]
    paths.append(write_record(tmp_path, record(task="synth-nli", variant="mi", speedup=3.3)))
    runs = collect_runs(paths)
    outs = [tmp_path / f"h.{e}" for e in ("csv", "md", "tex")]
    table = write_hash_functions(runs, published, *outs, preset="unit")
    assert table[["published_dev_mean", "published_dev_std", "published_speedup"]].isna().all().all()
    md, tex = outs[1].read_text(), outs[2].read_text()
    header, rows = md_table(md)
    assert not [h for h in header if "published" in h]
    assert [r[0] for r in rows] == ["*ElasticBERT-6L*", "Frequency", "MI"]     # no published-only rows
    assert {f"{SYNTH_SST} dev", "synth-nli (synthetic stand-in for SNLI) dev"} <= set(header)
    published_numbers = {f"{v:.1f}" for v in published.loc[published.table == "hash_functions", "value"]}
    cells = [c for r in rows for c in r[1:]]
    assert not any(c.split(" ")[0] in published_numbers for c in cells)
    assert PUBLISHED.name not in md and PUBLISHED.name not in tex


def test_row_speedup_uses_only_the_shown_tasks(runs_paths, published, tmp_path):
    runs = collect_runs(runs_paths)
    table = hash_functions_frame(runs, published, preset="unit")
    assert "STS-B" not in set(table.task)                   # not a column of the paper's table
    freq = cell(table, "ElasticBERT-6L", "frequency", "SST-2")
    assert freq.flops_speedup == pytest.approx(3.0)         # (2 + 3 + 4) / 3: STS-B's 10x left out
    assert freq.flops_speedup_vs_own_full == pytest.approx(1.5)
    assert freq.row_tasks == "SST-2;synth-sentiment"
    with_sts = cell(hash_functions_frame(runs, published, preset="unit", paper_tasks=["SST-2", "STS-B"]),
                    "ElasticBERT-6L", "frequency", "STS-B")
    assert with_sts.flops_speedup == pytest.approx(4.75) and with_sts.row_tasks == "SST-2;synth-sentiment;STS-B"
    outs = [tmp_path / f"h.{e}" for e in ("csv", "md", "tex")]
    write_hash_functions(runs, published, *outs, preset="unit")
    row = md_row(outs[1].read_text(), "Frequency")
    assert row["Speed-up (ours)"] == "3.0×" and row["Speed-up vs own full (ours)"] == "1.5×"


def test_rows_come_from_the_registry_reference_first(runs_paths, published, tmp_path):
    runs = collect_runs(runs_paths)
    outs = [tmp_path / f"h.{e}" for e in ("csv", "md", "tex")]
    write_hash_functions(runs, published, *outs, preset="unit")
    md = outs[1].read_text()
    _, rows = md_table(md)
    # Full first; the hash functions the paper publishes for ElasticBERT-6L on SST-2 are rows even unrun;
    # ElasticBERT-12L has no runs, so no group.
    assert [r[0] for r in rows] == ["*ElasticBERT-6L*", "Full (no exit)", "Rand-incons", "Rand-cons", "Frequency",
                                    "MI", "Clustered"]
    full = md_row(md, "Full (no exit)")
    assert full["Speed-up (ours)"] == "2.0×" and full["Speed-up vs own full (ours)"] == "1.0×"
    assert full["SST-2 dev (published)"] == "–" and full["Speed-up (published)"] == "–"
    mi = md_row(md, "MI")
    assert mi["SST-2 dev"] == "–" and mi["SST-2 dev (published)"] == "85.5 ± 0.49"
    caption = md.splitlines()[0]
    assert "ElasticBERT-6L: 12 layers" in caption and "flops_speedup" in caption and "dev" in caption
    assert "SST-2, SNLI, MRPC" in caption                # what the published speed-up is over


def test_the_three_formats_agree_on_the_cells(runs_paths, published, tmp_path):
    runs = collect_runs(runs_paths).assign(preset="my_preset")      # a preset name that needs escaping in LaTeX
    outs = [tmp_path / f"h.{e}" for e in ("csv", "md", "tex")]
    write_hash_functions(runs, published, *outs, preset="my_preset")
    md_header, md_rows = md_table(outs[1].read_text())
    tex = outs[2].read_text()
    assert tex_table(tex)[1] == md_rows
    assert "my\\_preset" in tex and tex.count(r"\begin{tabular}") == 1
    csv = pd.read_csv(outs[0])
    row = csv[(csv.variant == "frequency") & (csv.task == "SST-2")].iloc[0]
    md_cells = md_row(outs[1].read_text(), "Frequency")
    assert md_cells["SST-2 dev"] == f"{row.dev_mean:.1f} ± {row.dev_std:.2f}"
    assert md_cells["SST-2 dev (published)"] == f"{row.published_dev_mean:.1f} ± {row.published_dev_std:.2f}"
    assert md_cells["Speed-up (ours)"] == f"{row.flops_speedup:.1f}×"
    assert set(csv.preset) == {"my_preset"}


def test_runs_of_another_preset_are_refused(runs_paths, published, tmp_path):
    with pytest.raises(ValueError, match="preset"):
        write_hash_functions(collect_runs(runs_paths), published, *(tmp_path / f"h.{e}" for e in ("csv", "md", "tex")),
                             preset="other")
    assert not list(tmp_path.glob("h.*"))


# ------------------------------------------------------------------------------------------ figure

def test_figure_titles_synthetic_facets_and_keeps_published_points_off_them(runs_paths, published, tmp_path,
                                                                             monkeypatch):
    runs = collect_runs(runs_paths)
    points = summarize_points(runs)
    assert set(points.task) == {"SST-2", "STS-B", "synth-sentiment"}
    pub = published_points(published, points)
    assert set(pub.task) == {"SST-2"} and set(pub.variant) == {"frequency"}     # only what we ran, real tasks only
    assert pub.iloc[0].value == 85.5 and pub.iloc[0].speedup == 4.9

    drawn = {}

    def capture(fig, out_png, out_pdf):
        drawn["fig"] = fig
        drawn["axes"] = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
        drawn["legend"] = [t.get_text() for t in fig.legends[0].get_texts()]

    monkeypatch.setattr(score_vs_speedup, "save_figure", capture)
    plot_score_vs_speedup(runs, tmp_path / "a.png", tmp_path / "a.pdf", published_df=published)

    def hollow(ax):
        return [line for line in ax.lines if line.get_markerfacecolor() == "none"]

    assert set(drawn["axes"]) == {"SST-2", "STS-B", SYNTH_SST}
    assert len(hollow(drawn["axes"]["SST-2"])) == 1                 # Frequency, ElasticBERT-6L, published
    assert not hollow(drawn["axes"][SYNTH_SST]) and not hollow(drawn["axes"]["STS-B"])
    assert "published" in drawn["legend"] and "Full (no exit)" in drawn["legend"]
    assert drawn["axes"]["SST-2"].get_ylabel() == "dev score (%)"


def test_figure_of_synthetic_tasks_only_has_no_published_legend(tmp_path, published, monkeypatch):
    runs = collect_runs([write_record(tmp_path, record(task="synth-nli", seed=s)) for s in (1, 2)])
    drawn = {}
    monkeypatch.setattr(score_vs_speedup, "save_figure",
                        lambda fig, *_: drawn.update(legend=[t.get_text() for t in fig.legends[0].get_texts()]))
    plot_score_vs_speedup(runs, tmp_path / "a.png", tmp_path / "a.pdf", published_df=published)
    assert "published" not in drawn["legend"]


def test_figure_writes_png_and_pdf_deterministically(tmp_path, published):
    recs = [record(task=t, backbone=b, method=m, seed=s, test=70 + 3 * s + i, speedup=2.0 if m == "full" else 2.5 + i / 4)
            for i, (t, b, m) in enumerate((t, b, m) for t in ("SST-2", "synth-nli")
                                          for b in ("tiny-6L", "tiny-12L") for m in ("full", "hashee"))
            for s in (1, 2)]
    runs = collect_runs([write_record(tmp_path / "runs", r) for r in recs])
    out = tmp_path / "fig"
    points = plot_score_vs_speedup(runs, out / "a.png", out / "a.pdf", published_df=published)
    png, pdf = (out / "a.png").read_bytes(), (out / "a.pdf").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
    assert sorted(p.name for p in out.iterdir()) == ["a.pdf", "a.png"]          # temp files renamed away
    full = points[(points.method == "full") & (points.task == "SST-2") & (points.paper_backbone == "ElasticBERT-6L")]
    assert full.flops_speedup.item() == 2.0 and full.dev_score.item() == pytest.approx(75.5)
    assert full.dev_score_std.item() == pytest.approx(math.sqrt(4.5))
    plot_score_vs_speedup(runs, out / "b.png", out / "b.pdf", published_df=published)
    assert (out / "b.png").read_bytes() == png and (out / "b.pdf").read_bytes() == pdf


def test_figure_without_runs_or_published_still_writes(tmp_path):
    plot_score_vs_speedup(collect_runs([]), tmp_path / "e.png", tmp_path / "e.pdf")
    assert (tmp_path / "e.png").stat().st_size > 1000 and (tmp_path / "e.pdf").stat().st_size > 1000


# ------------------------------------------------------------------------------------------ wrappers

def run_script(name, log, **parts):
    fake = SimpleNamespace(log=[str(log)], **{k: SimpleNamespace(**v) if isinstance(v, dict) else v
                                               for k, v in parts.items()})
    try:
        runpy.run_path(str(SCRIPTS / name), init_globals={"snakemake": fake})
    finally:
        logging.getLogger().handlers.clear()


def test_wrappers_write_outputs(runs_paths, tmp_path):
    runs_csv = tmp_path / "t" / "runs.csv"
    run_script("table_runs.py", tmp_path / "c.log", input={"runs": list(runs_paths), "sweeps": [], "matched": []},
               output={"csv": str(runs_csv), "curves": str(tmp_path / "t" / "dynamic_curves.csv")})
    assert len(read_runs_csv(runs_csv)) == 5
    outs = {e: str(tmp_path / "t" / f"hash_functions.{e}") for e in ("csv", "md", "tex")}
    run_script("table_hash_functions.py", tmp_path / "h.log",
               input={"runs": str(runs_csv), "published": str(PUBLISHED)}, output=outs, params={"preset": "unit"})
    assert "85.0 ± 1.41" in Path(outs["md"]).read_text()
    figs = {"png": str(tmp_path / "f" / "s.png"), "pdf": str(tmp_path / "f" / "s.pdf")}
    run_script("figure_score_vs_speedup.py", tmp_path / "p.log",
               input={"runs": str(runs_csv), "published": str(PUBLISHED)}, output=figs, params={"preset": "unit"})
    assert all(Path(p).stat().st_size > 1000 for p in figs.values())


def test_wrapper_logs_one_line_and_exits_1_on_a_bad_record(tmp_path):
    bad = tmp_path / "seed1.json"
    bad.write_text(json.dumps({"preset": "unit"}))
    log = tmp_path / "table_runs.log"
    with pytest.raises(SystemExit) as exit_info:
        run_script("table_runs.py", log, input={"runs": [str(bad)], "sweeps": [], "matched": []},
                   output={"csv": str(tmp_path / "runs.csv"), "curves": str(tmp_path / "curves.csv")})
    assert exit_info.value.code == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "ERROR" in lines[0] and f"{bad}: " in lines[0] and "required property" in lines[0]
    assert not (tmp_path / "runs.csv").exists()


def test_upper_exit_margin_is_the_weakest_upper_half_exit_over_the_majority_answer():
    from analysis.collect import upper_exit_margin

    # 6 exits: layers 3-6 count (the first two, below the majority answer, do not)
    record = {"exit_dev_scores": [40.0, 50.0, 71.0, 80.0, 85.0, 90.0], "majority_dev_score": 55.0}
    assert upper_exit_margin(record) == pytest.approx(16.0)
    assert upper_exit_margin({**record, "exit_dev_scores": [40.0, 50.0, 54.0, 80.0, 85.0, 90.0]}) == pytest.approx(-1.0)
    # 5 exits: layers 3-5
    assert upper_exit_margin({"exit_dev_scores": [0.0, 1.0, 60.0, 70.0, 80.0], "majority_dev_score": 50.0}) == 10.0
    for missing in ({}, {"exit_dev_scores": [1.0, 2.0], "majority_dev_score": None}):
        assert math.isnan(upper_exit_margin(missing))
