"""The main table (analysis/elue_main.py) from a hand-made runs table: known cells, "–" where a task
was not run, "needs hub" for an unreachable checkpoint, published numbers beside real tasks only."""

import math

import pandas as pd
import pytest

from analysis.collect import RUN_COLUMNS, _typed, read_runs_csv, write_runs_csv
from analysis.elue_main import elue_main_frame, elue_main_layout
from analysis.published import load_published
from analysis.table_writer import to_markdown

CONFIG = {"methods": {"full": None, "truncated": ["1L", "2L", "3L"], "distilbert": None, "hashee": ["frequency"]},
          "requirements": {"network": False}}


def run(task, backbone, paper_backbone, method, variant, label, layers, seed, score, speedup, paper_task=None,
        synthetic=False):
    return {"preset": "t", "task": task, "paper_task": paper_task or task, "synthetic": synthetic,
            "backbone": backbone, "paper_backbone": paper_backbone, "num_layers": layers, "method": method,
            "variant": variant, "label": label, "family": "static", "seed": seed, "metric": "acc",
            "dev_score": score, "test_score": score, "best_on_test_score": score, "reference_layers": 12,
            # the ELUE-protocol count differs (as for HashEE): the table reads the exact one
            "flops_speedup": speedup, "elue_speedup": speedup * 1.25, "flops_speedup_vs_own_full": 1.0,
            "elue_speedup_vs_own_full": 1.0, "mean_exit_layer": layers, "train_seconds": 1.0, "eval_seconds": 1.0,
            "device": "cpu", "path": f"{task}/{backbone}/{method}/{variant}/{seed}"}


def runs_frame(tasks=(("SST-2", "SST-2", False), ("MRPC", "MRPC", False))):
    rows = []
    for task, paper, synthetic in tasks:
        for n, score in ((1, 70.0), (2, 76.0), (3, 80.0)):
            for seed, delta in ((1, -1.0), (2, 1.0)):      # mean over the two seeds = score
                rows.append(run(task, "eb-12L", "ElasticBERT-12L", "truncated", f"{n}L", f"ElasticBERT-{n}L", n,
                                seed, score + delta, 12.0 / n, paper, synthetic))
        rows.append(run(task, "bert", "BERT", "truncated", "3L", "BERT-3L", 3, 1, 77.0, 4.0, paper, synthetic))
        rows.append(run(task, "eb-12L", "ElasticBERT-12L", "full", "default", "Full (no exit)", 12, 1, 85.0, 1.0,
                        paper, synthetic))
    # HashEE on SST-2 only: 78.0 at 4.8x (halfway in FLOPs between 2L and 3L: curve 78.0)
    rows.append(run(tasks[0][0], "eb-6L", "ElasticBERT-6L", "hashee", "frequency", "Frequency", 6, 1, 78.0, 4.8,
                    tasks[0][1], tasks[0][2]))
    return _typed(pd.DataFrame(rows, columns=RUN_COLUMNS))


@pytest.fixture(scope="module")
def published():
    return load_published()


def test_rows_cells_and_elue_scores(published, tmp_path):
    write_runs_csv(runs_frame(), tmp_path / "runs.csv")       # through runs.csv, as the rule reads it
    table = elue_main_frame(read_runs_csv(tmp_path / "runs.csv"), published, "t", CONFIG)
    rows = list(dict.fromkeys(table["row"]))
    # the paper's order: BERT-3L before ElasticBERT-3L, then DistilBERT, then HashEE; only 3L rows
    assert rows == ["BERT-3L", "ElasticBERT-3L", "DistilBERT", "HashEE"]
    cell = table.set_index(["row", "task"])
    assert cell.loc[("ElasticBERT-3L", "SST-2"), "test_mean"] == pytest.approx(80.0)
    assert cell.loc[("ElasticBERT-3L", "SST-2"), "speedup_mean"] == pytest.approx(4.0)
    assert cell.loc[("ElasticBERT-3L", "SST-2"), "elue_our_curve"] == pytest.approx(0.0)
    assert cell.loc[("BERT-3L", "MRPC"), "elue_our_curve"] == pytest.approx(-3.0)
    # BERT-3L vs the published ElasticBERT-3L points (SST-2 84.1, MRPC 83.1): (77-84.1 + 77-83.1)/2
    assert cell.loc[("BERT-3L", "SST-2"), "elue_published_curve"] == pytest.approx(-6.6)
    assert cell.loc[("BERT-3L", "SST-2"), "published_score"] == 79.3
    assert cell.loc[("BERT-3L", "SST-2"), "published_elue"] == -3.70
    # HashEE: on the curve on SST-2, no MRPC run -> its ELUE score is undefined
    assert cell.loc[("HashEE", "SST-2"), "gap_our_curve"] == pytest.approx(0.0)
    assert math.isnan(cell.loc[("HashEE", "MRPC"), "test_mean"]) and math.isnan(cell.loc[("HashEE", "SST-2"), "elue_our_curve"])
    assert (cell.loc["DistilBERT", "status"] == "needs hub").all()

    md = to_markdown(elue_main_layout(table, "t"))
    line = {l.split("|")[1].strip(): [c.strip() for c in l.split("|")[2:-1]] for l in md.splitlines() if l.startswith("| ")}
    assert line["ElasticBERT-3L"] == ["80.0 (4.0×)", "84.1 (4.0×)", "80.0 (4.0×)", "83.1 (4.0×)", "+0.00", "-3.60", "+0.00"]
    assert line["DistilBERT"][0] == "needs hub" and line["DistilBERT"][1] == "84.8 (2.0×)"
    assert line["HashEE"][2:4] == ["–", "84.0 (4.8×)"] and line["HashEE"][4] == "–"


def test_synthetic_tasks_never_show_published_numbers(published):
    table = elue_main_frame(runs_frame((("synth-sentiment", "SST-2", True),)), published, "t", CONFIG)
    assert table["published_score"].isna().all() and table["published_elue"].isna().all()
    assert table["elue_published_curve"].isna().all()
    layout = elue_main_layout(table, "t")
    assert [c.flat for c in layout.columns] == ["synth-sentiment (synthetic stand-in for SST-2)", "ELUE (ours)"]
    rows = {r[0]: r[1:] for r in layout.groups[0][1]}
    assert rows["ElasticBERT-3L"] == ["80.0 (4.0×)", "+0.00"] and rows["DistilBERT"] == ["needs hub", "needs hub"]


def test_a_reachable_hub_method_without_runs_is_no_needs_hub_row(published):
    online = {**CONFIG, "requirements": {"network": True}}
    table = elue_main_frame(runs_frame(), published, "t", online)
    assert "DistilBERT" not in set(table["row"])


def test_a_method_that_cannot_run_a_task_gets_a_dash_and_no_elue_score(published):
    """A dynamic run that cannot exit on the task (entropy on regression) has a record without a
    score: "–" in its cell, "cannot run" in the tidy table, no ELUE score, and no error."""
    frame = runs_frame()
    for task, score in (("SST-2", 80.0), ("MRPC", math.nan)):
        row = run(task, "bert", "BERT", "deebert", "default", "DeeBERT", 12, 1, score, 3.0 if score == score else math.nan)
        row["family"] = "dynamic"
        frame = pd.concat([frame, _typed(pd.DataFrame([row], columns=RUN_COLUMNS))], ignore_index=True)
    config = {**CONFIG, "methods": {**CONFIG["methods"], "deebert": None}}
    table = elue_main_frame(frame, published, "t", config).set_index(["row", "task"])
    assert table.loc[("DeeBERT", "SST-2"), "test_mean"] == pytest.approx(80.0)
    assert table.loc[("DeeBERT", "MRPC"), "status"] == "cannot run"
    assert math.isnan(table.loc[("DeeBERT", "MRPC"), "test_mean"]) and math.isnan(table.loc[("DeeBERT", "SST-2"), "elue_our_curve"])


def test_one_method_on_two_backbones_names_the_backbone_each_row_ran_on(published):
    """A method run on two backbones gets one row per backbone, named by the backbone that ran: a
    stand-in (MiniLM for ElasticBERT-6L) with the paper backbone it stands in for, a backbone with no
    paper counterpart by its own name; never two rows with the same label."""
    config = {**CONFIG, "methods": {**CONFIG["methods"], "fastbert": None},
              "backbones": {"minilm-6L": {"source": "minilm", "paper_backbone": "ElasticBERT-6L"},
                            "minilm-elastic-6L": {"source": "pretrained-here", "pretrained_from": "minilm-6L"}}}
    frame = runs_frame()
    extra = []
    for backbone, paper_backbone, shift in (("minilm-6L", "ElasticBERT-6L", 0.0),
                                            ("minilm-elastic-6L", "minilm-elastic-6L", 1.0)):
        extra.append(run("SST-2", backbone, paper_backbone, "hashee", "frequency", "Frequency", 6, 1, 78.0 + shift, 4.8))
        fast = run("SST-2", backbone, paper_backbone, "fastbert", "default", "FastBERT", 6, 1, 80.0 + shift, 3.7)
        extra.append({**fast, "family": "dynamic"})
    frame = pd.concat([frame[frame["method"] != "hashee"], _typed(pd.DataFrame(extra, columns=RUN_COLUMNS))],
                      ignore_index=True)
    table = elue_main_frame(frame, published, "t", config)
    cell = table.set_index(["row", "task"])["test_mean"]
    assert cell[("HashEE w/ minilm-6L (for ElasticBERT-6L)", "SST-2")] == pytest.approx(78.0)
    assert cell[("HashEE w/ minilm-elastic-6L", "SST-2")] == pytest.approx(79.0)
    assert cell[("FastBERT w/ minilm-6L (for ElasticBERT-6L)", "SST-2")] == pytest.approx(80.0)
    assert cell[("FastBERT w/ minilm-elastic-6L", "SST-2")] == pytest.approx(81.0)
    # a hub checkpoint is the paper's backbone itself: its rows keep the paper's name
    hub = {**config, "backbones": {**config["backbones"], "minilm-6L": {"source": "hub", "paper_backbone": "ElasticBERT-6L"}}}
    rows = set(elue_main_frame(frame, published, "t", hub)["row"])
    assert {"HashEE w/ ElasticBERT-6L", "FastBERT w/ ElasticBERT-6L", "HashEE w/ minilm-elastic-6L"} <= rows


def test_each_row_is_also_measured_against_the_curve_of_the_backbone_it_ran_on(published):
    """Issue 20: where several backbones have truncation runs, each row also gets an ELUE score
    against the n-layer curve of the backbone it ran on (HashEE on the multi-exit pre-trained MiniLM
    against that backbone's own curve), beside the paper's convention (the ElasticBERT-family
    curve); a row on a backbone without truncations has none."""
    config = {**CONFIG, "backbones": {"minilm-6L": {"source": "minilm", "paper_backbone": "ElasticBERT-6L"},
                                      "minilm-elastic-6L": {"source": "pretrained-here", "pretrained_from": "minilm-6L"}}}
    frame = runs_frame()
    extra = [run("SST-2", "minilm-elastic-6L", "minilm-elastic-6L", "hashee", "frequency", "Frequency", 6, 1, 79.0, 4.8)]
    for task in ("SST-2", "MRPC"):     # its own curve: 60 at 6x, 64 at 4x, so 62 at 4.8x (halfway in FLOPs)
        for n, score in ((2, 60.0), (3, 64.0)):
            extra.append(run(task, "minilm-elastic-6L", "minilm-elastic-6L", "truncated", f"{n}L",
                             f"minilm-elastic-{n}L", n, 1, score, 12.0 / n))
    frame = pd.concat([frame, _typed(pd.DataFrame(extra, columns=RUN_COLUMNS))], ignore_index=True)
    table = elue_main_frame(frame, published, "t", config)
    line = table.set_index(["method", "paper_backbone", "task"])
    own = line.loc[("hashee", "minilm-elastic-6L", "SST-2")]
    assert (own["own_curve_backbone"], own["our_curve_backbone"]) == ("minilm-elastic-6L", "eb-12L")
    assert own["gap_own_curve"] == pytest.approx(79.0 - 62.0)      # its own curve
    assert own["gap_our_curve"] == pytest.approx(79.0 - 78.0)      # the paper's convention: eb-12L's
    assert math.isnan(line.loc[("hashee", "ElasticBERT-6L", "SST-2")]["gap_own_curve"])  # eb-6L: no truncations
    # its 3L row (the table's truncation) sits on its own curve, 16 below eb-12L's 3L (80 at 4x)
    trunc = line.loc[("truncated", "minilm-elastic-6L", "SST-2")]
    assert (trunc["elue_own_curve"], trunc["elue_our_curve"]) == (pytest.approx(0.0), pytest.approx(-16.0))
    layout = elue_main_layout(table, "t")
    assert "ELUE (ours vs own backbone's curve)" in [c.flat for c in layout.columns]
    sentence = layout.caption.split("ELUE (ours vs own backbone's curve):")[1].split(";")[0]
    assert all(name in sentence for name in ("eb-12L", "bert", "minilm-elastic-6L"))
    # only truncations on other backbones (BERT-3L): the column would score them against themselves
    plain = elue_main_layout(elue_main_frame(runs_frame(), published, "t", CONFIG), "t")
    assert "ELUE (ours vs own backbone's curve)" not in [c.flat for c in plain.columns]
