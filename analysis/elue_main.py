"""The paper's main table (ELUE test sets): per row, each task's "score (speed-up×)" from our runs
beside the published cell, and the ELUE score against two references.

- Rows: the methods of the registry with this table among their `tables` that the config runs, in
  the registry's order; within a method, its variants shown here (`table_variants`) and the paper
  backbones it ran on, in the published table's row order, then by label. A method that runs on
  several backbones with one label is named "<label> w/ <backbone>", the backbone that ran (a
  stand-in as "<config name> (for <paper backbone>)").
- Cells (ours): test score of the dev-selected checkpoint and the exact FLOPs speed-up against the
  12-layer reference (runs.csv `test_score`, `flops_speedup`), means over seeds. For dynamic methods
  runs.csv already holds the matched operating point. "–": no run of that task (a method that cannot
  run it). A method whose own hub checkpoint is unreachable under the config
  (earlyexit.methods.hub_unreachable) gets "needs hub" cells, never a substitute number.
- Published: the paper's cell beside ours, for real tasks only (never beside a synthetic stand-in).
  A real task whose runs read substitute split files (runs.csv `split_files`, from data.split_files:
  e.g. SNLI trained on its test file offline) is titled "(substitute splits)" and the caption names
  its files.
- ELUE score (analysis/elue_score.py) over the tasks shown, against our ElasticBERT-nL curve (our
  truncation runs) and against the published ElasticBERT points (real tasks only), beside the
  published ELUE column (over the paper's six tasks). Where several backbones have truncation runs
  (a backbone pre-trained here beside its base, issue 20), one more column measures each row
  against the n-layer curve of the backbone it ran on.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from analysis.display import recipe_sentence, task_order, task_title
from analysis.elue_score import CurvePoint, curve_from_runs, curves_by_backbone, elue_score, gap_to_curve
from analysis.published import PUBLISHED_NAME, elasticbert_curve
from analysis.table_writer import DASH, Column, Layout, write_table
from earlyexit.methods import METHODS, hub_unreachable
from earlyexit.models.backbones import BackboneSpec, stand_in_name

NAME = "elue_main"
# runs.csv column of the cells' speed-up: exact FLOPs. For sentence-level rows it equals the ELUE
# protocol's; for HashEE the protocol ignores exited tokens' K/V and reads higher (6.7x against the
# paper's 4.8x on SST-2 with MiniLM, where the exact count gives 4.8x: docs/elue_main_realtext.md).
SPEEDUP = "flops_speedup"
NEEDS_HUB = "needs hub"

TABLE_COLUMNS = [
    "preset", "row", "method", "variant", "paper_backbone", "status", "task", "paper_task", "synthetic", "n_seeds",
    "test_mean", "test_std", "speedup_mean", "published_row", "published_score", "published_speedup",
    "gap_our_curve", "extrapolated_our_curve", "gap_published_curve", "extrapolated_published_curve",
    "elue_our_curve", "elue_published_curve", "published_elue", "our_curve_backbone", "substitute_splits",
    "gap_own_curve", "extrapolated_own_curve", "elue_own_curve", "own_curve_backbone",
]


def _std(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.std(ddof=1)) if len(values) >= 2 else math.nan


def _published(published: pd.DataFrame | None) -> pd.DataFrame:
    if published is None:
        return pd.DataFrame(columns=["row", "task", "metric", "value", "speedup"])
    return published[published["table"] == NAME].reset_index(drop=True)


def _backbone_run(config: dict, group: pd.DataFrame, paper_backbone: str) -> str:
    """The backbone a row ran on, as its label says it: the paper's backbone, or the config backbone
    that stood in for it (a MiniLM or random backbone offline) with the row it stands in for."""
    name = str(group["backbone"].iloc[0])
    entry = config.get("backbones", {}).get(name)
    stand_in = stand_in_name(BackboneSpec.from_config(name, entry)) if entry else None
    return f"{stand_in} (for {paper_backbone})" if stand_in else paper_backbone


def table_row_keys(runs: pd.DataFrame, config: dict, published_rows: list[str]) -> list[dict]:
    """The rows, in order: {method, variant, paper_backbone, label, published_row, status}."""
    keys = []
    for method in METHODS.values():
        if NAME not in method.tables or method.name not in config["methods"]:
            continue
        if hub_unreachable(method, config):
            keys.append({"method": method.name, "variant": None, "paper_backbone": "", "label": method.paper_name,
                         "published_row": method.published_row(NAME, method.variants[0]), "status": NEEDS_HUB})
            continue
        shown = method.table_variants.get(NAME, method.variants)
        mine = runs[(runs["method"] == method.name) & runs["variant"].isin(shown)]
        backbones = list(dict.fromkeys(mine["paper_backbone"]))
        found = []
        for (variant, backbone), group in mine.groupby(["variant", "paper_backbone"], sort=False):
            label = str(group["label"].iloc[0])
            # the same label on every backbone: the rows need the backbone's name to tell them apart
            same_everywhere = len(backbones) > 1 and all(method.row_label(variant, b) == label for b in backbones)
            if len(shown) == 1 and label == method.label(variant):   # one row of the method: its paper name
                label = method.paper_name
            if same_everywhere:
                label = f"{label} w/ {_backbone_run(config, group, backbone)}"
            found.append({"method": method.name, "variant": variant, "paper_backbone": backbone, "label": label,
                          "published_row": method.published_row(NAME, variant, backbone), "status": "ran"})
        rank = {row: i for i, row in enumerate(published_rows)}
        found.sort(key=lambda k: (rank.get(k["published_row"], len(rank)), method.variants.index(k["variant"]),
                                  k["label"]))
        keys += found
    return keys


def _published_curves(published: pd.DataFrame | None, tasks) -> dict:
    """The published curve per task (real tasks only, by our task name)."""
    points = elasticbert_curve(published) if published is not None else {}
    return {task: [CurvePoint(n, s, x) for n, s, x in points[paper]]
            for task, paper, synthetic in tasks if not synthetic and paper in points}


def _own_curve(mine: pd.DataFrame, own: dict) -> tuple[str, dict]:
    """The n-layer curve of the one backbone a row ran on, where that backbone has truncation runs
    (issue 20: a backbone pre-trained here against its own truncations); ("", {}) otherwise."""
    ran_on = set(mine["backbone"])
    if len(ran_on) == 1 and (backbone := ran_on.pop()) in own:
        return backbone, own[backbone]
    return "", {}


def _status(status: str, runs_here: pd.DataFrame, scored: pd.DataFrame) -> str:
    if len(scored) or status == NEEDS_HUB:
        return status
    return "cannot run" if len(runs_here) else "no run"


def elue_main_frame(runs: pd.DataFrame, published: pd.DataFrame | None, preset: str, config: dict) -> pd.DataFrame:
    """The tidy table (TABLE_COLUMNS): one line per row × task shown (the tasks of the runs, in the
    paper's column order), each with the row's ELUE scores."""
    others = sorted(set(runs["preset"]) - {preset})
    if others:
        raise ValueError(f"runs table holds preset(s) {', '.join(others)}; expected only {preset!r}")
    pub = _published(published)
    paper_tasks = [t for t in dict.fromkeys(pub["task"]) if t != "ELUE"]
    tasks = task_order(runs, paper_tasks)
    curve_backbone, our_curve = curve_from_runs(runs, SPEEDUP)
    own_curves = curves_by_backbone(runs, SPEEDUP)
    pub_curve = _published_curves(published, tasks)
    pub_cells = {(r.row, r.task, r.metric): r for r in pub.itertuples(index=False)}
    # the split files the runs read, where they are not the ELUE protocol's (runs.csv split_files)
    substitutes = {task: "; ".join(sorted(set(runs.loc[runs["task"] == task, "split_files"]) - {""}))
                   for task, _, _ in tasks}
    lines = []
    for key in table_row_keys(runs, config, list(dict.fromkeys(pub["row"]))):
        mine = runs[(runs["method"] == key["method"]) & (runs["variant"] == key["variant"])
                    & (runs["paper_backbone"] == key["paper_backbone"])]
        own_backbone, own_curve = _own_curve(mine, own_curves)
        cells, row_lines = {}, []
        for task, paper_task, synthetic in tasks:
            runs_here = mine[mine["task"] == task]
            # a run whose method cannot do the task (e.g. an entropy exit on regression) has no score:
            # its cell is "–", like the paper's, and the row gets no ELUE score
            group = runs_here[runs_here["test_score"].notna() & runs_here[SPEEDUP].notna()]
            published_cell = None if synthetic else pub_cells.get((key["published_row"], paper_task, "score"))
            score = float(group["test_score"].mean()) if len(group) else math.nan
            speedup = float(group[SPEEDUP].mean()) if len(group) else math.nan
            line = {"preset": preset, "row": key["label"], "method": key["method"], "variant": key["variant"] or "",
                    "paper_backbone": key["paper_backbone"], "status": _status(key["status"], runs_here, group),
                    "task": task, "paper_task": paper_task, "synthetic": synthetic, "n_seeds": int(group["seed"].nunique()),
                    "test_mean": score, "test_std": _std(group["test_score"]), "speedup_mean": speedup,
                    "published_row": key["published_row"] if published_cell is not None else "",
                    "published_score": math.nan if published_cell is None else float(published_cell.value),
                    "published_speedup": math.nan if published_cell is None else float(published_cell.speedup),
                    "substitute_splits": substitutes[task]}
            for name, curves in (("our_curve", our_curve), ("published_curve", pub_curve), ("own_curve", own_curve)):
                curve = curves.get(task)
                if len(group) and curve:
                    gap = gap_to_curve(score, speedup, curve)
                    line[f"gap_{name}"], line[f"extrapolated_{name}"] = gap.gap, gap.extrapolated
                else:
                    line[f"gap_{name}"], line[f"extrapolated_{name}"] = math.nan, False
            if len(group):
                cells[task] = (score, speedup)
            row_lines.append(line)
        shown = [t for t, _, _ in tasks]
        real = [t for t, _, synthetic in tasks if not synthetic]
        ours_elue = elue_score(cells, our_curve, shown)[0]
        own_elue = elue_score(cells, own_curve, shown)[0]
        pub_elue = elue_score(cells, pub_curve, real)[0] if real and len(real) == len(shown) else math.nan
        published_elue = pub_cells.get((key["published_row"], "ELUE", "elue_score")) if real else None
        for line in row_lines:
            line.update(elue_our_curve=ours_elue, elue_published_curve=pub_elue,
                        published_elue=math.nan if published_elue is None else float(published_elue.value),
                        our_curve_backbone=curve_backbone or "", elue_own_curve=own_elue,
                        own_curve_backbone=own_backbone)
        lines += row_lines
    frame = pd.DataFrame.from_records(lines, columns=TABLE_COLUMNS)
    for column in ("synthetic", "extrapolated_our_curve", "extrapolated_published_curve", "extrapolated_own_curve"):
        frame[column] = frame[column].astype(bool)
    frame["n_seeds"] = frame["n_seeds"].astype("int64")
    return frame


# ----------------------------------------------------------------------------------------- display

def format_cell(score: float, speedup: float) -> str:
    """'84.1 (4.0×)'; the dash without a score."""
    if score is None or not np.isfinite(score):
        return DASH
    return f"{score:.1f} ({speedup:.1f}×)" if np.isfinite(speedup) else f"{score:.1f}"


def format_elue(value: float) -> str:
    return f"{value:+.2f}" if value is not None and np.isfinite(value) else DASH


def _own_curve_backbones(table: pd.DataFrame) -> list[str]:
    """The backbones whose own n-layer curve some row is measured against, where that changes
    something: shown only when a row other than a truncation ran on a backbone whose curve is not
    the ElasticBERT-family one (otherwise the column would repeat ELUE (ours) or score truncations
    against themselves)."""
    curve_rows = table["method"].map(lambda m: METHODS[m].reference_curve)
    differs = (table["own_curve_backbone"] != "") & (table["own_curve_backbone"] != table["our_curve_backbone"])
    if not (differs & ~curve_rows).any():
        return []
    return [b for b in dict.fromkeys(table["own_curve_backbone"]) if b]


def _caption(table: pd.DataFrame, preset: str, with_published: bool, recipe: str | None = None) -> str:
    curve_backbone = next((b for b in table["our_curve_backbone"] if b), None)
    seeds = table.loc[table["n_seeds"] > 0, "n_seeds"]
    seed_text = (f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}") if len(seeds) else "0"
    parts = [
        f"Main table (ELUE), preset {preset}. Ours: test score (%) of the dev-selected checkpoint and, in "
        f"parentheses, the exact FLOPs speed-up against the 12-layer reference model (runs.csv "
        f"test_score, {SPEEDUP}), means over seeds ({seed_text} per cell).",
        f"ELUE (ours): mean over the tasks shown of score minus the ElasticBERT-nL curve interpolated in FLOPs "
        f"at the row's speed-up, against our own n-layer truncations "
        f"({'of ' + curve_backbone if curve_backbone else 'none run'}); extrapolated beyond the curve's range "
        f"from the nearest segment (analysis/elue_score.py).",
    ]
    own = _own_curve_backbones(table)
    if own:
        parts.append(f"ELUE (ours vs own backbone's curve): the same, against the n-layer truncations of the "
                     f"backbone the row ran on ({', '.join(own)}), so a backbone pre-trained here is measured "
                     f"against its own curve; {DASH} for a row whose backbone has no truncation runs.")
    if with_published:
        parts.append(f"Published: the paper's cells and ELUE column (over its six tasks) from {PUBLISHED_NAME}, "
                     f"beside real tasks only; ELUE (vs published curve): ours against the published ElasticBERT "
                     f"points (only ElasticBERT-3L is published: a flat reference).")
    substitutes = dict.fromkeys(zip(table["task"], table["substitute_splits"]))
    for task, files in substitutes:
        if files:
            parts.append(f"{task} (substitute splits) is not the ELUE protocol: its split files are {files} "
                         f"(data.split_files); the published cells beside it are the paper's, for reference.")
    if table["synthetic"].any():
        parts.append("Synthetic tasks are the suite's generated stand-ins: no published number is shown beside them.")
    parts.append(f"{DASH} = no run, a method that cannot run the task (an entropy or confidence exit on regression), or nothing published; '{NEEDS_HUB}' = the method's own hub checkpoint cannot be "
                 f"loaded in this preset (requirements.network false), so it has no run.")
    parts.append(recipe_sentence(recipe))
    return " ".join(p for p in parts if p)


def elue_main_layout(table: pd.DataFrame, preset: str, recipe: str | None = None) -> Layout:
    tasks = list(dict.fromkeys(zip(table["task"], table["paper_task"], table["synthetic"].astype(bool))))
    with_published = not all(s for _, _, s in tasks)
    columns = []
    substituted = set(table.loc[table["substitute_splits"] != "", "task"])
    for task, paper_task, synthetic in tasks:
        title = task_title(task, paper_task, synthetic) + (" (substitute splits)" if task in substituted else "")
        columns.append(Column("ours", title, f"{title}"))
        if not synthetic:
            columns.append(Column("published", title, f"{title} (published)"))
    columns.append(Column("ours", "ELUE", "ELUE (ours)"))
    own_curves = bool(_own_curve_backbones(table))
    if own_curves:
        columns.append(Column("ours vs own backbone's curve", "ELUE", "ELUE (ours vs own backbone's curve)"))
    if with_published:
        columns += [Column("ours vs published curve", "ELUE", "ELUE (ours vs published curve)"),
                    Column("published", "ELUE", "ELUE (published)")]
    rows = []
    for _, cells in table.groupby(["row", "method", "paper_backbone"], sort=False):
        by_task = cells.set_index("task")
        first = cells.iloc[0]
        row = [first["row"]]
        for task, _, synthetic in tasks:
            c = by_task.loc[task]
            row.append(NEEDS_HUB if c["status"] == NEEDS_HUB else format_cell(c["test_mean"], c["speedup_mean"]))
            if not synthetic:
                row.append(format_cell(c["published_score"], c["published_speedup"]))
        row.append(NEEDS_HUB if first["status"] == NEEDS_HUB else format_elue(first["elue_our_curve"]))
        if own_curves:
            row.append(NEEDS_HUB if first["status"] == NEEDS_HUB else format_elue(first["elue_own_curve"]))
        if with_published:
            row += [NEEDS_HUB if first["status"] == NEEDS_HUB else format_elue(first["elue_published_curve"]),
                    format_elue(first["published_elue"])]
        rows.append(row)
    return Layout(name=f"{NAME}-{preset}", caption=_caption(table, preset, with_published, recipe),
                  stub="Model", columns=columns, groups=[(None, rows)])


def write_elue_main(runs: pd.DataFrame, published: pd.DataFrame | None, config: dict, out_csv: str | os.PathLike,
                    out_md: str | os.PathLike, out_tex: str | os.PathLike, preset: str) -> pd.DataFrame:
    table = elue_main_frame(runs, published, preset, config)
    write_table(table, elue_main_layout(table, preset, config.get("training_recipe")), out_csv, out_md, out_tex,
                source=f"analysis/elue_main.py from the run records of preset {preset}")
    return table
