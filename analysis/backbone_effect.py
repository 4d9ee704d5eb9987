"""The paper's "effect of backbones" figure: HashEE on each configured backbone, test score against
the exact FLOPs speed-up, one facet per task; each backbone's full model and n-layer truncations
drawn as its reference line (a backbone's static curve, from 1 layer to its full depth).
Which methods are which comes from the registry: the reference row and the `reference_curve` method
draw the lines, the token-level family (HashEE) the points.

Points and lines are means over seeds of runs.csv `test_score` and `flops_speedup` (the main table's
convention). Colours: one per backbone, named as the legend of the dynamic curves does (what ran, and
the paper backbone it stands in for: "minilm-6L for ElasticBERT-6L"), so a backbone and its multi-exit
pre-trained version (issue 20, source pretrained-here) sit side by side; HashEE's hash functions by marker. Synthetic tasks are
titled as such; no published number is drawn (the paper gives this figure without a table).
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.display import task_order, task_title  # noqa: E402
from analysis.figure_writer import save_figure  # noqa: E402
from earlyexit.methods import METHODS  # noqa: E402

SPEEDUP = "flops_speedup"
MARKERS = ("o", "s", "D", "^", "v", "P", "X")
LINE_COLUMNS = ["task", "paper_task", "synthetic", "backbone", "paper_backbone", "kind", "method", "variant", "num_layers",
                "n_seeds", "test_score", "speedup"]


# the registry's parts of the figure: a backbone's static line, and the token-level methods' points
LINE, TOKEN_LEVEL = "line", "token-level"


def _line_methods() -> set[str]:
    """The backbone's own static models: the reference (full) and its depth curve (the truncations)."""
    return {m.name for m in METHODS.values() if m.reference or m.reference_curve}


def _token_level_methods() -> set[str]:
    return {m.name for m in METHODS.values() if m.family == TOKEN_LEVEL}



def backbone_effect_points(runs: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds per task × paper backbone × (method, variant): kind 'line' for the full model
    and truncations (sorted by depth), 'token-level' for HashEE's hash functions."""
    static, token_level = _line_methods(), _token_level_methods()
    keep = runs[runs["method"].isin(static | token_level)]
    token_backbones = set(keep.loc[keep["method"].isin(token_level), "paper_backbone"])
    keep = keep[keep["paper_backbone"].isin(token_backbones)]
    points = []
    for (task, paper_task, synthetic, ran, backbone, method, variant), group in keep.groupby(
            ["task", "paper_task", "synthetic", "backbone", "paper_backbone", "method", "variant"], sort=True):
        points.append({"task": task, "paper_task": paper_task, "synthetic": bool(synthetic), "backbone": ran,
                       "paper_backbone": backbone,
                       "kind": TOKEN_LEVEL if method in token_level else LINE, "method": method, "variant": variant,
                       "num_layers": int(group["num_layers"].iloc[0]), "n_seeds": int(group["seed"].nunique()),
                       "test_score": float(group["test_score"].mean()), "speedup": float(group[SPEEDUP].mean())})
    frame = pd.DataFrame(points, columns=LINE_COLUMNS)
    return frame.sort_values(["task", "paper_backbone", "kind", "num_layers", "variant"], kind="mergesort").reset_index(drop=True)


def plot_backbone_effect(runs: pd.DataFrame, out_png: str | os.PathLike, out_pdf: str | os.PathLike, preset: str) -> pd.DataFrame:
    points = backbone_effect_points(runs)
    if points.empty:
        raise ValueError(f"preset {preset}: no HashEE runs, nothing to plot for the backbone-effect figure")
    tasks = task_order(points, [])
    from analysis.dynamic import backbone_text

    backbones = list(dict.fromkeys(zip(points["backbone"], points["paper_backbone"])))
    colors = {b: f"C{i}" for i, b in enumerate(backbones)}
    hashes = list(dict.fromkeys(zip(*(points.loc[points["kind"] == TOKEN_LEVEL, c] for c in ("method", "variant")))))
    markers = {h: MARKERS[i % len(MARKERS)] for i, h in enumerate(hashes)}
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, (task, paper_task, synthetic) in zip(axes[0], tasks):
        here = points[points["task"] == task]
        for backbone in backbones:
            mine = here[(here["backbone"] == backbone[0]) & (here["paper_backbone"] == backbone[1])]
            name = backbone_text(*backbone)
            line = mine[mine["kind"] == LINE].drop_duplicates("num_layers")
            if len(line):
                ax.plot(line["speedup"], line["test_score"], "-", color=colors[backbone], alpha=0.6, marker=".",
                        label=f"{name}: full and n-layer truncations")
            for h in hashes:
                method, variant = h
                hit = mine[(mine["method"] == method) & (mine["variant"] == variant)]
                if len(hit):
                    ax.plot(hit["speedup"], hit["test_score"], linestyle="none", marker=markers[h], markersize=8,
                            color=colors[backbone],
                            label=f"{METHODS[method].paper_name} ({METHODS[method].label(variant)}) w/ {name}")
        ax.set_title(task_title(task, paper_task, synthetic), fontsize=9)
        ax.set_xlabel("speed-up (FLOPs vs 12 layers, ×)")
        ax.set_ylabel("test score (%)")
        ax.grid(alpha=0.3)
    handles = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=2, fontsize=8,
               bbox_to_anchor=(0.5, -0.08 - 0.05 * ((len(handles) + 1) // 2)))
    fig.suptitle(f"Effect of backbones, preset {preset} (means over seeds)", fontsize=10)
    save_figure(fig, out_png, out_pdf)
    return points
