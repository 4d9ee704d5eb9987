"""Dev score against FLOPs speed-up, one facet per task, our runs beside the published points.

The published hash-function numbers are dev scores with speed-ups against the 12-layer model, so
ours are plotted the same way: dev score of the dev-selected checkpoint against `flops_speedup`
(the backbone family's reference depth). Rows, labels and colours come from the methods registry
(the methods with the hash-function table among their `tables`). A synthetic task's facet is titled
as synthetic and never carries a published point.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis.display import ordered, table_rows, task_order, task_title  # noqa: E402
from analysis.figure_writer import save_figure  # noqa: E402

TABLE = "hash_functions"          # whose rows (registry) and published points (data file) are plotted
BACKBONE_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<", ">")
REFERENCE_MARKER = "*"
LEGEND_HEADERS = ("Method", "Backbone")
POINT_COLUMNS = ["task", "paper_task", "synthetic", "paper_backbone", "method", "variant", "label", "n_seeds",
                 "dev_score", "dev_score_std", "flops_speedup", "flops_speedup_std"]


def _mean_std(values: pd.Series) -> tuple[float, float]:
    return float(values.mean()), (float(values.std(ddof=1)) if len(values) >= 2 else 0.0)


def summarize_points(runs_df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds (std 0 for one seed) of dev score and FLOPs speed-up per task ×
    paper backbone × (method, variant) of the table's rows, in the registry's row order."""
    rows = {(r.method, r.variant): i for i, r in enumerate(table_rows(TABLE))}
    labels = {(r.method, r.variant): r.label for r in table_rows(TABLE)}
    runs = runs_df[np.array([k in rows for k in zip(runs_df["method"], runs_df["variant"])], dtype=bool)]
    points = []
    for (task, paper_task, synthetic, backbone, method, variant), group in runs.groupby(
            ["task", "paper_task", "synthetic", "paper_backbone", "method", "variant"], sort=True):
        score, score_std = _mean_std(group["dev_score"])
        speedup, speedup_std = _mean_std(group["flops_speedup"])
        points.append({"task": task, "paper_task": paper_task, "synthetic": bool(synthetic),
                       "paper_backbone": backbone, "method": method, "variant": variant,
                       "label": labels[(method, variant)], "n_seeds": len(group), "dev_score": score,
                       "dev_score_std": score_std, "flops_speedup": speedup, "flops_speedup_std": speedup_std})
    frame = pd.DataFrame(points, columns=POINT_COLUMNS)
    order = frame.apply(lambda p: rows[(p["method"], p["variant"])], axis=1) if len(frame) else []
    return frame.assign(_order=order).sort_values(["task", "paper_backbone", "_order"], kind="mergesort") \
        .drop(columns="_order").reset_index(drop=True)


def published_points(published_df: pd.DataFrame | None, points: pd.DataFrame) -> pd.DataFrame:
    """The published (dev score, speed-up) points beside our points: only on real tasks, for the
    rows and paper backbones we ran. Columns: task (ours), method, variant, label, backbone, value, std, speedup."""
    columns = ["task", "method", "variant", "label", "backbone", "value", "std", "speedup"]
    if published_df is None or points.empty:
        return pd.DataFrame(columns=columns)
    pub = published_df[(published_df["table"] == TABLE) & (published_df["metric"] == "score")]
    pub = pub.dropna(subset=["value", "speedup"])
    ran = points[~points["synthetic"]]
    found = []
    for row in table_rows(TABLE):
        mine = ran[(ran["method"] == row.method) & (ran["variant"] == row.variant)]
        if mine.empty:
            continue
        name = row.published_row(TABLE)
        for task, paper_task, backbone in mine[["task", "paper_task", "paper_backbone"]].drop_duplicates().itertuples(index=False):
            hit = pub[(pub["row"] == name) & (pub["task"] == paper_task) & (pub["backbone"] == backbone)]
            found += [{"task": task, "method": row.method, "variant": row.variant, "label": row.label,
                       "backbone": backbone, "value": float(h.value), "std": float(h.std), "speedup": float(h.speedup)}
                      for h in hit.itertuples(index=False)]
    return pd.DataFrame(found, columns=columns)


def _bar(std: float) -> float | None:
    """An error bar half-length, or None (no bar, no stray caps) for a missing or zero std."""
    return float(std) if np.isfinite(std) and std > 0 else None


def _legend_handles(rows, backbones, markers, with_published):
    def header(text):
        return Line2D([], [], linestyle="none", marker="", label=text)

    handles = [header(LEGEND_HEADERS[0])]
    handles += [Line2D([], [], linestyle="none", marker=REFERENCE_MARKER if r.reference else "o",
                       markersize=12 if r.reference else 7, color=r.color, label=r.label) for r in rows]
    handles.append(header(LEGEND_HEADERS[1]))
    handles += [Line2D([], [], linestyle="none", marker=markers[b], markersize=7, color="0.35", label=b)
                for b in backbones]
    if with_published:
        handles.append(header(""))
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=7, markerfacecolor="none",
                              markeredgecolor="0.35", markeredgewidth=1.5, label="published"))
    return handles


def _empty_figure(preset, out_png, out_pdf) -> None:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.text(0.5, 0.5, "no runs to plot", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    fig.suptitle(f"Dev score vs FLOPs speed-up, preset {preset}")
    save_figure(fig, out_png, out_pdf)


def plot_score_vs_speedup(runs_df: pd.DataFrame, out_png: str | os.PathLike, out_pdf: str | os.PathLike,
                          published_df: pd.DataFrame | None = None, preset: str | None = None) -> pd.DataFrame:
    """Dev score (y) against FLOPs speed-up vs the reference depth (x), one facet per task (3 per
    line). Our points: means over seeds with std error bars on both axes, coloured as the registry
    says, marker by paper backbone, reference rows as stars. On real tasks only, the published points
    of the rows and backbones we ran are hollow, labelled "published". Writes PNG and PDF atomically;
    returns our plotted points."""
    if preset is None:
        preset = ", ".join(sorted(set(runs_df["preset"]))) or "(none)"
    points = summarize_points(runs_df)
    published = published_points(published_df, points)
    if points.empty:
        _empty_figure(preset, out_png, out_pdf)
        return points
    paper_order = list(published_df["task"]) if published_df is not None else []
    keys = task_order(points, paper_order)
    titles = {task: task_title(task, paper_task, synthetic) for task, paper_task, synthetic in keys}
    tasks = [task for task, _, _ in keys]
    backbones = ordered(points["paper_backbone"], list(published_df["backbone"]) if published_df is not None else [])
    markers = {b: BACKBONE_MARKERS[i % len(BACKBONE_MARKERS)] for i, b in enumerate(backbones)}
    rows = [r for r in table_rows(TABLE) if ((points["method"] == r.method) & (points["variant"] == r.variant)).any()]
    by_key = {(r.method, r.variant): r for r in rows}

    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        grid = sns.FacetGrid(points, col="task", col_order=tasks, col_wrap=min(3, len(tasks)),
                             height=3.4, aspect=1.15, sharex=True, sharey=False, despine=False)
        for task, ax in grid.axes_dict.items():
            for p in points[points["task"] == task].itertuples(index=False):
                row = by_key[(p.method, p.variant)]
                ax.errorbar(p.flops_speedup, p.dev_score, xerr=_bar(p.flops_speedup_std),
                            yerr=_bar(p.dev_score_std), linestyle="none", capsize=2, elinewidth=1,
                            marker=REFERENCE_MARKER if row.reference else markers[p.paper_backbone],
                            markersize=13 if row.reference else 7, zorder=3, color=row.color)
                if row.reference and len(backbones) > 1:   # which backbone each star is; alternate up/down
                    lift = 3 if backbones.index(p.paper_backbone) % 2 == 0 else -9
                    ax.annotate(p.paper_backbone, (p.flops_speedup, p.dev_score), fontsize=7,
                                xytext=(7, lift), textcoords="offset points")
            for q in published[published["task"] == task].itertuples(index=False):
                ax.errorbar(q.speedup, q.value, yerr=_bar(q.std), linestyle="none", capsize=2, elinewidth=0.8,
                            marker=markers[q.backbone], markersize=8, markerfacecolor="none",
                            markeredgewidth=1.5, zorder=2, color=by_key[(q.method, q.variant)].color)
            ax.set_title(titles[task], fontsize=9)
            ax.set_xlabel("FLOPs speed-up vs reference depth (×)")
            ax.set_ylabel("dev score (%)")
            ax.tick_params(labelbottom=True)
        grid.figure.suptitle(f"Dev score vs FLOPs speed-up, preset {preset}\n"
                             f"(ours: mean ± std over seeds"
                             + ("; hollow: published dev scores" if len(published) else "") + ")",
                             y=1.0, va="bottom")
        legend = grid.figure.legend(handles=_legend_handles(rows, backbones, markers, len(published) > 0),
                                    loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        for text in legend.get_texts():
            if text.get_text() in LEGEND_HEADERS:
                text.set_fontweight("bold")
        save_figure(grid.figure, out_png, out_pdf)
    return points
