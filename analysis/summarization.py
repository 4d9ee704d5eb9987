"""The paper's summarization table (ROUGE-1/2/L per task; Enc., Dec., Total speed-ups) from the
summarization run records, with the published numbers beside the rows of REAL tasks only.

Rows: per backbone (its `paper_backbone`, e.g. BART, BART-6L, CPT), the no-exit reference method
named after the backbone, then every other method of the registry with this table among its
`tables`, named "<method> w/ <backbone>" as the paper writes "HashEE w/ BART". A -6L row is the
reference method on a backbone entry with halved stacks. Per task: ROUGE-1/2/L (F1 x 100; English
ROUGE-L is summary-level rougeLsum, Chinese sentence-level on characters; earlyexit/generation/rouge.py),
mean over seeds. Per row: Enc., Dec. and Total speed-ups against the full model (greedy-equivalent
and beam-weighted Total), each the mean over the row's runs. A "Lead-1" row scores the first source
sentence as the summary, the baseline a model must beat.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from analysis.display import ordered, task_title
from analysis.published import PUBLISHED_NAME
from analysis.table_writer import DASH, Column, Layout, format_speedup, write_table
from earlyexit.methods import METHODS
from earlyexit.plumbing.files import read_json

NAME = "summarization"
PAPER_TASKS = ("Reddit", "CNN-DM", "CSL", "TTNews")
ROUGE = ("rouge1", "rouge2", "rougeL")
SPEEDUPS = ("enc", "dec", "total", "total_beam")
LEAD = "Lead-1 (first source sentence)"
TABLE_COLUMNS = ["source", "row", "paper_backbone", "method", "variant", "task", "paper_task", "synthetic", "n_seeds",
                 *ROUGE, "rougeL_variant", *[f"{s}_speedup" for s in SPEEDUPS], "num_beams", "mean_exit_layer"]


def row_name(method: str, paper_backbone: str) -> str:
    """The paper's row: the backbone's name for the no-exit reference, "<method> w/ <backbone>" else."""
    chosen = METHODS[method]
    return paper_backbone if chosen.reference else f"{chosen.paper_name} w/ {paper_backbone}"


def read_summarization_runs(paths: list[str], preset: str) -> pd.DataFrame:
    """One row per run record; a record that is not a summarization run of `preset` -> ValueError naming it."""
    from analysis.collect import check_record

    rows = []
    for path in paths:
        record = read_json(path)
        if record.get("metric") != "rouge":
            raise ValueError(f"{path}: not a summarization run record (metric {record.get('metric')!r}, not 'rouge')")
        check_record(record, path)
        if record["preset"] != preset:
            raise ValueError(f"{path}: preset {record['preset']!r}, expected {preset!r}")
        if record["method"] not in METHODS or NAME not in METHODS[record["method"]].tables:
            raise ValueError(f"{path}: method {record['method']!r} has no rows in the {NAME} table")
        rows.append({
            "task": record["task"], "paper_task": record["paper_task"], "synthetic": bool(record["synthetic"]),
            "paper_backbone": record["paper_backbone"], "method": record["method"], "variant": record["variant"],
            "seed": record["seed"], "row": row_name(record["method"], record["paper_backbone"]),
            **{k: float(record["test"][k]) for k in ROUGE}, "rougeL_variant": record["test"]["rougeL_variant"],
            **{f"{s}_speedup": float(record["speedup"][s]) for s in SPEEDUPS},
            "num_beams": int(record["speedup"]["num_beams"]), "mean_exit_layer": float(record["mean_exit_layer"]),
            **{f"lead_{k}": float(record["lead_baseline"][k]) for k in ROUGE},
        })
    if not rows:
        raise ValueError("no summarization run records")
    return pd.DataFrame(rows)


def _ours(runs: pd.DataFrame) -> pd.DataFrame:
    keys = ["row", "paper_backbone", "method", "variant", "task", "paper_task", "synthetic"]
    grouped = runs.groupby(keys, sort=False)
    out = grouped[[*ROUGE, *[f"{s}_speedup" for s in SPEEDUPS], "mean_exit_layer"]].mean().reset_index()
    out["n_seeds"] = grouped["seed"].nunique().values
    out["num_beams"] = grouped["num_beams"].first().values
    out["rougeL_variant"] = grouped["rougeL_variant"].first().values
    out["source"] = "ours"
    lead = runs.groupby(["task", "paper_task", "synthetic"], sort=False)[[f"lead_{k}" for k in ROUGE]].first().reset_index()
    lead = lead.rename(columns={f"lead_{k}": k for k in ROUGE}).assign(
        source="ours", row=LEAD, paper_backbone="", method="", variant="", n_seeds=0, rougeL_variant="",
        num_beams=0, **{f"{s}_speedup": math.nan for s in SPEEDUPS}, mean_exit_layer=math.nan)
    return pd.concat([out, lead], ignore_index=True)


def _published(published: pd.DataFrame, real_paper_tasks: list[str]) -> pd.DataFrame:
    """Published rows on the paper tasks that some real-task run stands beside."""
    table = published[published["table"] == NAME]
    rows = []
    for name in dict.fromkeys(table["row"]):
        entry = table[table["row"] == name]
        speed = {f"{m.split('_')[0]}_speedup": v for m, v in zip(entry["metric"], entry["value"]) if m.endswith("_speedup")}
        for paper_task in real_paper_tasks:
            cells = entry[entry["task"] == paper_task]
            if cells.empty:
                continue
            scores = dict(zip(cells["metric"], cells["value"]))
            rows.append({"source": "published", "row": name, "paper_backbone": "", "method": "", "variant": "",
                         "task": paper_task, "paper_task": paper_task, "synthetic": False, "n_seeds": 0,
                         **{k: scores.get(k, math.nan) for k in ROUGE}, "rougeL_variant": "",
                         "enc_speedup": speed.get("enc_speedup", math.nan),
                         "dec_speedup": speed.get("dec_speedup", math.nan),
                         "total_speedup": speed.get("total_speedup", math.nan), "total_beam_speedup": math.nan,
                         "num_beams": 0, "mean_exit_layer": math.nan})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def summarization_table(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    ours = _ours(runs)
    real = ordered(ours.loc[~ours["synthetic"], "paper_task"], PAPER_TASKS)
    tidy = pd.concat([ours, _published(published, real)], ignore_index=True)
    return tidy[TABLE_COLUMNS]


def _rouge_cell(row) -> str:
    values = [row[k] for k in ROUGE]
    return "/".join(f"{v:.2f}" for v in values) if all(np.isfinite(values)) else DASH


def summarization_layout(tidy: pd.DataFrame, preset: str) -> Layout:
    ours, published = tidy[tidy["source"] == "ours"], tidy[tidy["source"] == "published"]
    tasks = sorted({(t.task, t.paper_task, bool(t.synthetic)) for t in ours.itertuples()},
                   key=lambda k: (PAPER_TASKS.index(k[1]) if k[1] in PAPER_TASKS else len(PAPER_TASKS), k[2], k[0]))
    columns = [Column("Enc."), Column("Dec."), Column("Total"), Column("Total (beam)"),
               *[Column("R-1/R-2/R-L", task_title(*t)) for t in tasks]]

    def block(frame: pd.DataFrame, by_task) -> list[list[str]]:
        lines = []
        for name in dict.fromkeys(frame["row"]):
            entry = frame[frame["row"] == name]
            speed = [format_speedup(float(entry[f"{s}_speedup"].mean())) if entry[f"{s}_speedup"].notna().any()
                     else DASH for s in SPEEDUPS]
            cells = []
            for task in tasks:
                hit = entry[entry["task"] == by_task(task)]
                cells.append(_rouge_cell(hit.iloc[0]) if len(hit) else DASH)
            lines.append([name, *speed, *cells])
        return lines

    groups = [(f"Ours ({preset} preset)", block(ours, lambda t: t[0]))]
    if len(published):
        groups.append(("Published (Sun et al., 2022)", block(published, lambda t: t[1] if not t[2] else None)))
    variant = ", ".join(sorted(set(ours["rougeL_variant"]) - {""}))
    caption = (f"Summarization (test ROUGE-1/2/L F1 x 100, ROUGE-L = {variant}; speed-ups against the full model, "
               f"Total greedy-equivalent and beam-weighted), preset {preset}; published numbers from "
               f"{PUBLISHED_NAME} beside real tasks only.")
    return Layout(name=NAME, caption=caption, stub="Model", columns=columns, groups=groups)


def write_summarization(run_paths: list[str], published: pd.DataFrame, out_csv: str | os.PathLike,
                        out_md: str | os.PathLike, out_tex: str | os.PathLike, preset: str) -> pd.DataFrame:
    tidy = summarization_table(read_summarization_runs(run_paths, preset), published)
    write_table(tidy, summarization_layout(tidy, preset), out_csv, out_md, out_tex,
                source="workflow/scripts/table_summarization.py (rule table_summarization)")
    return tidy
