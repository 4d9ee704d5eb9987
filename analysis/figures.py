"""Test score against FLOPs speed-up: one facet per paper task, our runs beside the published points."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis.hash_table import (FULL, FULL_LABEL, PAPER_BACKBONE_ORDER, PAPER_TASK_ORDER,  # noqa: E402
                                 PUBLISHED_TABLE, display_name, ordered)
from earlyexit.hashing import HASH_NAMES  # noqa: E402
from earlyexit.io_utils import atomic_path  # noqa: E402

# Fixed colours per hash function and markers per backbone, so every preset's figure reads the same.
METHOD_COLORS = dict(zip(HASH_NAMES, sns.color_palette("colorblind", len(HASH_NAMES))))
BACKBONE_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<", ">")
FULL_COLOR = "black"
FULL_MARKER = "*"
PNG_DPI = 150
LEGEND_HEADERS = ("Method", "Backbone")


def _mean_std(values: pd.Series) -> tuple[float, float]:
    return float(values.mean()), (float(values.std(ddof=1)) if len(values) >= 2 else 0.0)


def summarize_points(runs_df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of test score and FLOPs speed-up per paper_task x paper_backbone x method
    (the "full" reference and the hash functions; std 0 for a single seed)."""
    runs = runs_df[runs_df["method"].isin((FULL, *HASH_NAMES))]
    rows = []
    for (task, backbone, method), group in runs.groupby(["paper_task", "paper_backbone", "method"], sort=True):
        score, score_std = _mean_std(group["test_score"])
        speedup, speedup_std = _mean_std(group["flops_speedup"])
        rows.append({"paper_task": task, "paper_backbone": backbone, "method": method, "n_seeds": len(group),
                     "test_score": score, "test_score_std": score_std,
                     "flops_speedup": speedup, "flops_speedup_std": speedup_std})
    return pd.DataFrame(rows, columns=["paper_task", "paper_backbone", "method", "n_seeds", "test_score",
                                       "test_score_std", "flops_speedup", "flops_speedup_std"])


def _bar(std: float) -> float | None:
    """An error bar half-length, or None (no bar, no stray caps) for a missing or zero std."""
    return float(std) if np.isfinite(std) and std > 0 else None


def _published_points(published_df: pd.DataFrame | None, tasks, backbones, methods) -> pd.DataFrame:
    if published_df is None:
        return pd.DataFrame(columns=["row", "backbone", "task", "value", "std", "speedup"])
    pub = published_df[(published_df["table"] == PUBLISHED_TABLE) & (published_df["metric"] == "score")]
    pub = pub[pub["task"].isin(tasks) & pub["backbone"].isin(backbones) & pub["row"].isin(methods)]
    return pub.dropna(subset=["value", "speedup"])


def _save(fig, out_png, out_pdf) -> None:
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=PNG_DPI, bbox_inches="tight", metadata={"Software": None})
    with atomic_path(out_pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})


def _legend_handles(methods, backbones, markers, with_published):
    def header(text):
        return Line2D([], [], linestyle="none", marker="", label=text)

    handles = [header(LEGEND_HEADERS[0])]
    if FULL in methods:
        handles.append(Line2D([], [], linestyle="none", marker=FULL_MARKER, markersize=12, color=FULL_COLOR,
                              label=FULL_LABEL))
    handles += [Line2D([], [], linestyle="none", marker="o", markersize=7, color=METHOD_COLORS[m],
                       label=display_name(m)) for m in HASH_NAMES if m in methods]
    handles.append(header(LEGEND_HEADERS[1]))
    handles += [Line2D([], [], linestyle="none", marker=markers[b], markersize=7, color="0.35", label=b)
                for b in backbones]
    if with_published:
        handles.append(header(""))
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=7, markerfacecolor="none",
                              markeredgecolor="0.35", markeredgewidth=1.5, label="published"))
    return handles


def plot_score_vs_speedup(runs_df: pd.DataFrame, out_png: str | os.PathLike, out_pdf: str | os.PathLike,
                          published_df: pd.DataFrame | None = None, preset: str | None = None) -> pd.DataFrame:
    """Test score (y) against FLOPs speed-up (x), one facet per paper task (3 per line). Our points are
    means over seeds with std error bars on both axes, coloured by hash function, marker by paper backbone;
    "full" (no exit) is a black star. Published hash-function points (from `published_df`, for the tasks,
    backbones and hash functions that were run) are hollow markers labelled "published". Writes PNG and
    PDF atomically and returns the plotted (our) points."""
    if preset is None:
        presets = sorted(set(runs_df["preset"]))
        preset = ", ".join(presets) if presets else "(none)"
    points = summarize_points(runs_df)
    tasks = ordered(points["paper_task"], PAPER_TASK_ORDER)
    backbones = ordered(points["paper_backbone"], PAPER_BACKBONE_ORDER)
    methods = set(points["method"])
    markers = {b: BACKBONE_MARKERS[i % len(BACKBONE_MARKERS)] for i, b in enumerate(backbones)}
    published = _published_points(published_df, tasks, backbones, methods & set(HASH_NAMES))
    task_names = runs_df.groupby("paper_task")["task"].unique()

    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        if not tasks:
            fig, ax = plt.subplots(figsize=(5, 3))
            ax.text(0.5, 0.5, "no runs to plot", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            fig.suptitle(f"Test score vs FLOPs speed-up, preset {preset}")
            try:
                _save(fig, out_png, out_pdf)
            finally:
                plt.close(fig)
            return points

        grid = sns.FacetGrid(points, col="paper_task", col_order=tasks, col_wrap=min(3, len(tasks)),
                             height=3.4, aspect=1.15, sharex=True, sharey=False, despine=False)
        try:
            for task, ax in grid.axes_dict.items():
                here = points[points["paper_task"] == task]
                for row in here.itertuples(index=False):
                    is_full = row.method == FULL
                    ax.errorbar(row.flops_speedup, row.test_score, xerr=_bar(row.flops_speedup_std),
                                yerr=_bar(row.test_score_std), linestyle="none", capsize=2, elinewidth=1,
                                marker=FULL_MARKER if is_full else markers[row.paper_backbone],
                                markersize=13 if is_full else 7, zorder=3,
                                color=FULL_COLOR if is_full else METHOD_COLORS[row.method])
                    if is_full and len(backbones) > 1:   # which backbone each star is; alternate up/down
                        lift = 3 if backbones.index(row.paper_backbone) % 2 == 0 else -9
                        ax.annotate(row.paper_backbone, (row.flops_speedup, row.test_score), fontsize=7,
                                    xytext=(7, lift), textcoords="offset points")
                for row in published[published["task"] == task].itertuples(index=False):
                    ax.errorbar(row.speedup, row.value, yerr=_bar(row.std),
                                linestyle="none", capsize=2, elinewidth=0.8, marker=markers[row.backbone],
                                markersize=8, markerfacecolor="none", markeredgewidth=1.5, zorder=2,
                                color=METHOD_COLORS[row.row])
                names = ", ".join(sorted(task_names.get(task, [])))
                ax.set_title(task if names in ("", task) else f"{task} ({names})")
                ax.set_xlabel("FLOPs speed-up (×)")
                ax.set_ylabel("test score (%)")
                ax.tick_params(labelbottom=True)
            grid.figure.suptitle(f"Test score vs FLOPs speed-up, preset {preset}\n"
                                 f"(ours: mean ± std over seeds; hollow: published dev scores)", y=1.0, va="bottom")
            legend = grid.figure.legend(handles=_legend_handles(methods, backbones, markers, len(published) > 0),
                                        loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
            for text in legend.get_texts():
                if text.get_text() in LEGEND_HEADERS:
                    text.set_fontweight("bold")
            _save(grid.figure, out_png, out_pdf)
        finally:
            plt.close(grid.figure)
    return points
