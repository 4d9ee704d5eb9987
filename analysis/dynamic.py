"""The dynamic early-exit methods: the `dynamic` table (ours beside published, ELUE test sets) and
the `dynamic_curves` figure (score against speed-up per task, every sweep point).

Table: one row per dynamic (method, variant) of the registry with elue_main among its `tables`,
grouped by paper backbone; per task "test score (speed-up×)" of the matched operating point
(runs.csv, mean over seeds), and for real tasks the published cell beside it. Every speed-up is the
paper's convention, exact FLOPs against the backbone family's 12-layer reference (`flops_speedup`);
the ELUE protocol's count stays in the CSV as the labelled extra column `elue_protocol_speedup`. "–" where the method
cannot run the task (runs.csv `exit_unsupported`), where there are no runs, or nothing published.
Synthetic tasks are named as stand-ins and never get a published number.

Figure: per task, each dynamic method's curve (test score against the test set's exact FLOPs
speed-up against the reference depth, mean over seeds per setting, dynamic_curves.csv), its matched
point ringed, and HashEE's runs (runs.csv) at their exact FLOPs speed-up on the same axes (the ELUE
protocol ignores the K/V work of exited tokens and would place HashEE too far right: 6.7x against the
exact 4.8x on SST-2); on real tasks the published elue_main
points hollow and labelled.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from analysis.display import ordered, recipe_sentence, row_color, table_rows, task_order, task_title
from analysis.published import PUBLISHED_NAME
from analysis.table_writer import DASH, Column, Layout, format_speedup, write_table
from earlyexit.methods import METHODS

NAME = "dynamic"
PUBLISHED_TABLE = "elue_main"
TABLE_COLUMNS = ["preset", "paper_backbone", "backbones_ran", "method", "variant", "label", "task", "paper_task", "synthetic",
                 "n_seeds", "test_mean", "test_std", "flops_speedup", "elue_protocol_speedup", "operating_points",
                 "exit_unsupported", "published_score", "published_speedup"]


def dynamic_rows():
    return [r for r in table_rows(PUBLISHED_TABLE) if METHODS[r.method].family == "dynamic"]


def published_cell(published: pd.DataFrame | None, row: str, paper_task: str, backbone: str):
    """(score, speed-up) of a published elue_main cell, or None."""
    if published is None:
        return None
    hits = published[(published["table"] == PUBLISHED_TABLE) & (published["row"] == row)
                     & (published["task"] == paper_task) & (published["metric"] == "score")
                     & published["backbone"].isin(["", backbone])]
    if hits.empty:
        return None
    first = hits.iloc[0]
    return float(first["value"]), float(first["speedup"])


def dynamic_frame(runs: pd.DataFrame, published: pd.DataFrame | None, preset: str) -> pd.DataFrame:
    rows = dynamic_rows()
    keys = {(r.method, r.variant) for r in rows}
    runs = runs[np.array([k in keys for k in zip(runs["method"], runs["variant"])], dtype=bool)]
    tasks = task_order(runs, list(dict.fromkeys(published["task"])) if published is not None else [])
    lines = []
    for backbone in ordered(runs["paper_backbone"], []):
        here = runs[runs["paper_backbone"] == backbone]
        # the config backbones that ran for it (a MiniLM stand-in for ElasticBERT-6L offline)
        ran = "; ".join(backbone_text(b, backbone) for b in sorted(set(here["backbone"])))
        for row in rows:
            mine = here[(here["method"] == row.method) & (here["variant"] == row.variant)]
            if mine.empty:
                continue
            # the runs' own label where they agree (CascadeBERT's says "approximated" when it is)
            labels = sorted(set(mine["label"]))
            label = labels[0] if len(labels) == 1 else row.label
            for task, paper_task, synthetic in tasks:
                cell = mine[mine["task"] == task]
                scores = cell["test_score"].dropna()
                reasons = sorted(set(cell["exit_unsupported"]) - {""})
                pub = None if synthetic else published_cell(published, row.published_row(PUBLISHED_TABLE, backbone), paper_task, backbone)
                lines.append({
                    "preset": preset, "paper_backbone": backbone, "backbones_ran": ran, "method": row.method, "variant": row.variant,
                    "label": label, "task": task, "paper_task": paper_task, "synthetic": synthetic,
                    "n_seeds": int(cell["seed"].nunique()),
                    "test_mean": float(scores.mean()) if len(scores) else math.nan,
                    "test_std": float(scores.std(ddof=1)) if len(scores) >= 2 else math.nan,
                    "flops_speedup": float(cell["flops_speedup"].dropna().mean()) if cell["flops_speedup"].notna().any() else math.nan,
                    "elue_protocol_speedup": float(cell["elue_speedup"].dropna().mean()) if cell["elue_speedup"].notna().any() else math.nan,
                    "operating_points": ";".join(sorted(set(cell["operating_point"]) - {""})),
                    "exit_unsupported": "; ".join(reasons),
                    "published_score": math.nan if pub is None else pub[0],
                    "published_speedup": math.nan if pub is None else pub[1],
                })
    frame = pd.DataFrame.from_records(lines, columns=TABLE_COLUMNS)
    frame["synthetic"] = frame["synthetic"].astype(bool)
    return frame


def format_cell(score: float, speedup: float) -> str:
    """'81.2 (3.4×)', the dash without a score."""
    if score is None or not np.isfinite(score):
        return DASH
    return f"{score:.1f} ({format_speedup(speedup)})"


def dynamic_layout(table: pd.DataFrame, preset: str, recipe: str | None = None) -> Layout:
    tasks = list(dict.fromkeys(zip(table["task"], table["paper_task"], table["synthetic"].astype(bool))))
    with_published = bool(table["published_score"].notna().any())
    columns = []
    for task, paper_task, synthetic in tasks:
        title = task_title(task, paper_task, synthetic)
        columns.append(Column("ours", title, f"{title} (ours)"))
        if with_published and not synthetic:
            columns.append(Column("published", title, f"{title} (published)"))
    groups = []
    for _, part in table.groupby("paper_backbone", sort=False):
        lines = []
        for _, cells in part.groupby(["method", "variant"], sort=False):
            by_task = cells.set_index("task")
            line = [cells.iloc[0]["label"]]
            for task, _, synthetic in tasks:
                c = by_task.loc[task]
                line.append(format_cell(c["test_mean"], c["flops_speedup"]))
                if with_published and not synthetic:
                    line.append(format_cell(c["published_score"], c["published_speedup"]))
            lines.append(line)
        groups.append((part["backbones_ran"].iloc[0], lines))   # the heading names what ran
    parts = [f"Dynamic early exit, preset {preset}. Ours: test score (%) at the matched operating point of each "
             "curve (every inference setting of every run of the method's variant, e.g. each alpha of ConsistentEE: "
             "the point whose dev exact-FLOPs speed-up against the reference depth is closest to the published "
             "speed-up of the method on the task's paper column, or to dynamic.target_speedup where none is published), mean over "
             "seeds, with its test-set exact FLOPs speed-up against the backbone family's reference depth "
             "(ratio of sums; the paper's convention, used by every table and figure of the suite) in brackets."]
    if with_published:
        parts.append(f"Published: the paper's ELUE test-set cells from {PUBLISHED_NAME}, beside real tasks only.")
    if any(s for _, _, s in tasks):
        parts.append("Synthetic tasks are the suite's generated stand-ins: no published number is shown beside them.")
    parts.append(f"{DASH} = the method cannot run the task (its exit rule needs class distributions), no runs, "
                 "or nothing published.")
    if recipe is not None:
        parts.append(recipe_sentence(recipe))
    return Layout(name=f"{NAME}-{preset}", caption=" ".join(parts), stub="Method", columns=columns, groups=groups)


def write_dynamic_table(runs: pd.DataFrame, published: pd.DataFrame | None, out_csv, out_md, out_tex,
                        preset: str, recipe: str | None = None) -> pd.DataFrame:
    table = dynamic_frame(runs, published, preset)
    write_table(table, dynamic_layout(table, preset, recipe), out_csv, out_md, out_tex,
                source=f"analysis/dynamic.py from the run records and sweeps of preset {preset}")
    return table


# ----------------------------------------------------------------------------------------- figure

def curve_points(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of test score and test exact-FLOPs speed-up per task x backbone x method x setting."""
    if curves.empty:
        return curves.assign(n_seeds=[])
    keys = ["task", "paper_task", "synthetic", "backbone", "paper_backbone", "method", "variant", "label", "setting"]
    grouped = curves.groupby(keys, sort=False)
    return grouped.agg(test_score=("test_score", "mean"), flops_speedup=("flops_speedup", "mean"),
                       matched=("matched", "any"), n_seeds=("seed", "nunique")).reset_index()


def backbone_text(ran: str, paper_backbone: str) -> str:
    """The legend's backbone: what ran, and the paper backbone it stands in for when that differs."""
    return paper_backbone if ran == paper_backbone else f"{ran} for {paper_backbone}"


def plot_dynamic_curves(runs: pd.DataFrame, curves: pd.DataFrame, out_png: str | os.PathLike,
                        out_pdf: str | os.PathLike, published: pd.DataFrame | None, preset: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.figure_writer import save_figure

    points = curve_points(curves)
    # the token-level method the HashEE paper proposes (registry: paper_subject), as squares beside the curves
    subject = next((m for m in METHODS.values() if m.paper_subject), None)
    hashee = runs[runs["method"] == (subject.name if subject else None)]
    shown = pd.concat([points[["task", "paper_task", "synthetic"]], hashee[["task", "paper_task", "synthetic"]]])
    tasks = task_order(shown, list(dict.fromkeys(published["task"])) if published is not None else [])
    columns = max(1, min(3, len(tasks)))
    rows = max(1, math.ceil(len(tasks) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    for ax, (task, paper_task, synthetic) in zip(axes.flat, tasks):
        here = points[points["task"] == task]
        for (method, variant, ran, backbone), curve in here.groupby(["method", "variant", "backbone", "paper_backbone"],
                                                                     sort=False):
            curve = curve.sort_values("flops_speedup")
            color = row_color(method, variant)
            ax.plot(curve["flops_speedup"], curve["test_score"], "-o", color=color, markersize=3, linewidth=1,
                    label=f"{curve.iloc[0]['label']} ({backbone_text(ran, backbone)})")
            matched = curve[curve["matched"]]
            ax.plot(matched["flops_speedup"], matched["test_score"], "o", markersize=8, markerfacecolor="none",
                    markeredgecolor=color)
        for (variant, ran, backbone), group in hashee[hashee["task"] == task].groupby(["variant", "backbone", "paper_backbone"],
                                                                                        sort=False):
            ax.plot(group["flops_speedup"].mean(), group["test_score"].mean(), "s", color=row_color(subject.name, variant),
                    markersize=6, label=f"{subject.paper_name} {subject.label(variant)} ({backbone_text(ran, backbone)})")
        if not synthetic and published is not None:
            pub = published[(published["table"] == PUBLISHED_TABLE) & (published["task"] == paper_task)
                            & (published["metric"] == "score") & published["speedup"].notna()]
            # a row's published name may depend on the backbone (BERxiT w/ BERT / w/ ElasticBERT)
            wanted = {r.published_row(PUBLISHED_TABLE, b): r for r in table_rows(PUBLISHED_TABLE)
                      if METHODS[r.method].family == "dynamic" or METHODS[r.method].paper_subject
                      for b in {*here["paper_backbone"], *hashee.loc[hashee["task"] == task, "paper_backbone"]}}
            for item in pub.itertuples(index=False):
                row = wanted.get(item.row)
                if row is None:
                    continue
                ax.plot(item.speedup, item.value, "D", markerfacecolor="none", markeredgecolor=row.color, markersize=7)
                ax.annotate(f"{item.row} (published)", (item.speedup, item.value), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")
        ax.set_title(task_title(task, paper_task, synthetic), fontsize=9)
        ax.set_xlabel("exact FLOPs speed-up vs 12-layer reference (test)")
        ax.set_ylabel("test score (%)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="lower left")
    fig.suptitle(f"Score vs speed-up, dynamic early exit and HashEE (preset {preset})", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out_png, out_pdf)
