"""Analysis layer: run records -> runs table -> hash-function table (ours beside published) and the figure."""

import json
import logging
import math
import runpy
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from analysis.collect import RUN_COLUMNS, collect_runs, read_runs_csv, write_runs_csv
from analysis.figures import plot_score_vs_speedup
from analysis.hash_table import FULL_LABEL, hash_function_table, write_hash_table
from analysis.published import load_published
from tests.conftest import REPO

PUBLISHED = REPO / "data" / "published" / "hashee_published.csv"
SCRIPTS = REPO / "workflow" / "scripts"
PAPER_TASKS = {"synth-sentiment": "SST-2", "synth-nli": "SNLI", "synth-similarity": "STS-B"}
PAPER_BACKBONES = {"tiny-6L": ("ElasticBERT-6L", 6), "tiny-12L": ("ElasticBERT-12L", 12), "tiny-bert": ("BERT", 4)}


def record(task="synth-sentiment", backbone="tiny-6L", method="frequency", seed=1, test=80.0, dev=None,
           speedup=2.0, preset="unit", best_on_test=True):
    paper_backbone, layers = PAPER_BACKBONES[backbone]
    rec = {
        "preset": preset, "task": task, "paper_task": PAPER_TASKS[task], "backbone": backbone,
        "paper_backbone": paper_backbone, "num_layers": layers, "method": method, "seed": seed,
        "metric": "accuracy", "dev": {"score": test + 1.0 if dev is None else dev, "accuracy": 0.0},
        "test": {"score": test}, "speedup": {"flops": speedup, "elue": speedup + 0.5},
        "flops": {"full_per_instance": 100.0, "method_per_instance": 100.0 / speedup},
        "mean_exit_layer": layers / speedup, "train_seconds": 12.5, "eval_seconds": 0.5,
        "device": "cpu (test)", "config": {"training": {"epochs": 1}},
    }
    if best_on_test:
        rec["best_on_test"] = {"score": test + 0.5}
    return rec


def write_record(root: Path, rec: dict) -> str:
    path = root / rec["preset"] / "runs" / rec["task"] / rec["backbone"] / rec["method"] / f"seed{rec['seed']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec), encoding="utf-8")
    return str(path)


@pytest.fixture
def runs_paths(tmp_path):
    """Frequency on ElasticBERT-6L: SST-2 seeds 80 / 82 (speed-ups 2 / 3), SNLI one seed 84 (speed-up 4);
    full on SST-2 (one seed, 86); no MRPC, MI or ElasticBERT-12L runs."""
    recs = [
        record(seed=2, test=82.0, speedup=3.0),
        record(seed=1, test=80.0, speedup=2.0, best_on_test=False),
        record(task="synth-nli", seed=1, test=84.0, speedup=4.0),
        record(method="full", seed=1, test=86.0, speedup=1.0),
    ]
    return [write_record(tmp_path, r) for r in recs]


@pytest.fixture
def published():
    return load_published(PUBLISHED)


def cell(table, backbone, method, task):
    rows = table[(table.paper_backbone == backbone) & (table.method == method) & (table.paper_task == task)]
    assert len(rows) == 1
    return rows.iloc[0]


# ------------------------------------------------------------------------------------------ collect

def test_collect_one_sorted_row_per_run(runs_paths):
    runs = collect_runs(runs_paths)
    assert list(runs.columns) == RUN_COLUMNS and len(runs) == 4
    assert list(zip(runs.task, runs.method, runs.seed)) == [
        ("synth-nli", "frequency", 1), ("synth-sentiment", "frequency", 1),
        ("synth-sentiment", "frequency", 2), ("synth-sentiment", "full", 1)]
    first_sst = runs.iloc[1]
    assert first_sst.test_score == 80.0 and first_sst.dev_score == 81.0 and first_sst.flops_speedup == 2.0
    assert first_sst.elue_speedup == 2.5 and first_sst.mean_exit_layer == 3.0 and first_sst.num_layers == 6
    assert first_sst.paper_task == "SST-2" and first_sst.paper_backbone == "ElasticBERT-6L"
    assert math.isnan(first_sst.best_on_test_score)          # absent in that record
    assert runs.iloc[2].best_on_test_score == 82.5
    assert first_sst.path == Path(runs_paths[1]).as_posix()
    # order of the input paths does not matter
    pd.testing.assert_frame_equal(collect_runs(list(reversed(runs_paths))), runs)


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


# ------------------------------------------------------------------------------------------ hash table

def test_hash_table_numbers_and_published_columns(runs_paths, published):
    table = hash_function_table(collect_runs(runs_paths), published, preset="unit")
    freq_sst = cell(table, "ElasticBERT-6L", "frequency", "SST-2")
    assert freq_sst.n_seeds == 2 and freq_sst.test_mean == 81.0
    assert freq_sst.test_std == pytest.approx(math.sqrt(2))        # ddof=1
    assert freq_sst.dev_mean == 82.0 and freq_sst.flops_speedup == 2.5
    assert freq_sst.flops_speedup_row == pytest.approx(3.0)        # mean over the row's runs: (2 + 3 + 4) / 3
    assert (freq_sst.published_value, freq_sst.published_std, freq_sst.published_speedup) == (85.5, 0.41, 4.9)
    freq_snli = cell(table, "ElasticBERT-6L", "frequency", "SNLI")
    assert freq_snli.test_mean == 84.0 and math.isnan(freq_snli.test_std) and freq_snli.n_seeds == 1
    assert freq_snli.published_value == 89.6 and math.isnan(freq_snli.published_std)
    freq_mrpc = cell(table, "ElasticBERT-6L", "frequency", "MRPC")   # no runs: ours empty, published there
    assert freq_mrpc.n_seeds == 0 and math.isnan(freq_mrpc.test_mean) and freq_mrpc.published_value == 84.0
    mi = cell(table, "ElasticBERT-6L", "mi", "SST-2")                # not run at all
    assert math.isnan(mi.test_mean) and math.isnan(mi.flops_speedup_row) and mi.published_value == 85.5
    full = cell(table, "ElasticBERT-6L", "full", "SST-2")
    assert full.row_label == FULL_LABEL and full.test_mean == 86.0 and math.isnan(full.published_value)
    # row order: full first within its backbone, then the hashes in the paper's order
    six = table[table.paper_backbone == "ElasticBERT-6L"].drop_duplicates("method")
    assert list(six.method) == ["full", "rand-incons", "rand-cons", "frequency", "mi", "clustered"]
    assert list(dict.fromkeys(table.paper_task)) == ["SST-2", "SNLI", "MRPC"]
    twelve = cell(table, "ElasticBERT-12L", "clustered", "SST-2")
    assert math.isnan(twelve.test_mean) and twelve.published_value == 87.0 and twelve.published_std == 0.54


def test_published_values_only_where_row_backbone_and_task_match(tmp_path, published):
    paths = [write_record(tmp_path, record(backbone="tiny-bert", test=70.0)),
             write_record(tmp_path, record(task="synth-similarity", test=60.0))]
    table = hash_function_table(collect_runs(paths), published, preset="unit")
    bert = cell(table, "BERT", "frequency", "SST-2")
    assert bert.test_mean == 70.0 and math.isnan(bert.published_value) and math.isnan(bert.published_speedup)
    sts = cell(table, "ElasticBERT-6L", "frequency", "STS-B")
    assert sts.test_mean == 60.0 and math.isnan(sts.published_value)
    assert table.loc[table.paper_backbone == "BERT", "method"].unique().tolist() == ["frequency"]
    # without published numbers, every published column is empty
    bare = hash_function_table(collect_runs(paths), None, preset="unit")
    assert bare[["published_value", "published_std", "published_speedup"]].isna().all().all()


def _md_rows(md: str) -> dict:
    """{(group, label): cells} from the Markdown table."""
    rows, group = {}, None
    for line in md.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "Hash":
            rows["header"] = cells
        elif cells[0].startswith("*"):
            group = cells[0].strip("*")
        else:
            rows[(group, cells[0])] = cells
    return rows


def test_rendered_table_markdown_latex_csv(runs_paths, published, tmp_path):
    out = tmp_path / "tables"
    runs = collect_runs(runs_paths).assign(preset="my_preset")       # a preset name that needs escaping in LaTeX
    write_hash_table(runs, published, out / "h.csv", out / "h.md", out / "h.tex", preset="my_preset")
    md = (out / "h.md").read_text()
    caption = md.splitlines()[0]
    assert "my_preset" in caption and "data/published/hashee_published.csv" in caption and "published" in caption
    rows = _md_rows(md)
    assert rows["header"] == ["Hash", "Speed-up", "SST-2", "SNLI", "MRPC",
                              "Speed-up (published)", "SST-2 (published)", "SNLI (published)", "MRPC (published)"]
    assert rows[("ElasticBERT-6L", "Frequency")] == ["Frequency", "3.0×", "81.0 ± 1.41", "84.0", "–",
                                                     "4.9×", "85.5 ± 0.41", "89.6", "84.0 ± 0.27"]
    assert rows[("ElasticBERT-6L", "MI")] == ["MI", "–", "–", "–", "–", "3.3×", "85.5 ± 0.49", "90.0", "86.0 ± 0.23"]
    assert rows[("ElasticBERT-6L", FULL_LABEL)] == [FULL_LABEL, "1.0×", "86.0", "–", "–", "–", "–", "–", "–"]
    assert rows[("ElasticBERT-12L", "Rand-cons")][1:5] == ["–"] * 4
    assert md.index("Full (no exit)") < md.index("Rand-incons")

    tex = (out / "h.tex").read_text()
    assert all(k in tex for k in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule"))
    assert r"Frequency & 3.0$\times$ & 81.0 $\pm$ 1.41 & 84.0 & -- & 4.9$\times$ & 85.5 $\pm$ 0.41" in tex
    assert "my\\_preset" in tex and "±" not in tex and "×" not in tex and "–" not in tex
    body = [line for line in tex.splitlines() if not line.startswith("%")]
    assert not any(ch in line.replace(r"\%", "").replace(r"\_", "") for line in body for ch in "%_")
    assert tex.count(r"\begin{tabular}") == 1 and tex.count(r"\end{tabular}") == 1

    csv = pd.read_csv(out / "h.csv")
    row = csv[(csv.method == "frequency") & (csv.paper_task == "SST-2") & (csv.paper_backbone == "ElasticBERT-6L")]
    assert row.test_mean.item() == 81.0 and row.published_value.item() == 85.5 and row.flops_speedup.item() == 2.5
    assert set(csv.preset) == {"my_preset"}
    assert sorted(p.name for p in out.iterdir()) == ["h.csv", "h.md", "h.tex"]


def test_runs_of_another_preset_are_refused(runs_paths, published, tmp_path):
    with pytest.raises(ValueError, match="preset"):
        write_hash_table(collect_runs(runs_paths), published, *(tmp_path / f"h.{e}" for e in ("csv", "md", "tex")),
                         preset="other")
    assert not list(tmp_path.glob("h.*"))


# ------------------------------------------------------------------------------------------ figure

def test_figure_writes_png_and_pdf_deterministically(tmp_path, published):
    recs = [record(task=t, backbone=b, method=m, seed=s, test=70 + 3 * s + i, speedup=1.0 if m == "full" else 1.5 + i / 4)
            for i, (t, b, m) in enumerate((t, b, m) for t in ("synth-sentiment", "synth-nli")
                                          for b in ("tiny-6L", "tiny-12L") for m in ("full", "frequency", "mi"))
            for s in (1, 2)]
    runs = collect_runs([write_record(tmp_path / "runs", r) for r in recs])
    out = tmp_path / "fig"
    points = plot_score_vs_speedup(runs, out / "a.png", out / "a.pdf", published_df=published)
    png, pdf = (out / "a.png").read_bytes(), (out / "a.pdf").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
    assert sorted(p.name for p in out.iterdir()) == ["a.pdf", "a.png"]          # temp files renamed away
    full = points[(points.method == "full") & (points.paper_task == "SST-2") & (points.paper_backbone == "ElasticBERT-6L")]
    assert full.flops_speedup.item() == 1.0 and full.test_score.item() == pytest.approx(74.5)
    assert full.test_score_std.item() == pytest.approx(math.sqrt(4.5))
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
    run_script("collect_results.py", tmp_path / "c.log", input=list(runs_paths), output={"csv": str(runs_csv)})
    assert len(read_runs_csv(runs_csv)) == 4
    outs = {e: str(tmp_path / "t" / f"hash.{e}") for e in ("csv", "md", "tex")}
    run_script("render_hash_table.py", tmp_path / "h.log", input={"runs": str(runs_csv), "published": str(PUBLISHED)},
               output=outs, params={"preset": "unit"})
    assert "81.0 ± 1.41" in Path(outs["md"]).read_text()
    figs = {"png": str(tmp_path / "f" / "s.png"), "pdf": str(tmp_path / "f" / "s.pdf")}
    run_script("plot_score_vs_speedup.py", tmp_path / "p.log", input={"runs": str(runs_csv), "published": str(PUBLISHED)},
               output=figs, params={"preset": "unit"})
    assert all(Path(p).stat().st_size > 1000 for p in figs.values())


def test_wrapper_logs_one_line_and_exits_1_on_a_bad_record(tmp_path):
    bad = tmp_path / "seed1.json"
    bad.write_text(json.dumps({"preset": "unit"}))
    log = tmp_path / "collect.log"
    with pytest.raises(SystemExit) as exit_info:
        run_script("collect_results.py", log, input=[str(bad)], output={"csv": str(tmp_path / "runs.csv")})
    assert exit_info.value.code == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "ERROR" in lines[0] and f"{bad}: " in lines[0] and "required property" in lines[0]
    assert not (tmp_path / "runs.csv").exists()
