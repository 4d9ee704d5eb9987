"""ConsistentEE for generation: the table (llm_early_exit.{csv,md,tex}) and the figure
(llm_early_exit.{png,pdf}) from the decoder-LM run records (rule llm_run).

Tidy CSV: every operating point of every run (mean over seeds), with `shown` marking the points of
the Markdown/LaTeX table. Shown per task x backbone, in registry order: every point of the static
methods (the full model, each truncation), every point of a single-point method (ConsistentEE's
variants), and of a swept method (CALM's thresholds) only the point matched to each method that
names it as `paper_rival`: the threshold whose speed-up is closest to that method's. Columns: test
ROUGE-1/2/L, the exact-FLOPs speed-up against the full model, the mean exit layer, tokens per second
at batch 1 (wall clock) and, on the synthetic task, exact match and the mean exit layer of its easy
and its context tokens.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from analysis.table_writer import DASH, Column, Layout, format_speedup, write_table
from earlyexit.methods import METHODS
from earlyexit.plumbing.records import read_checked_json
from earlyexit.generation.llm_experiment import RECORD_SCHEMA

NAME = "llm_early_exit"
METRICS = ("rouge1", "rouge2", "rougeL", "speedup", "mean_exit_layer", "tokens_per_second", "exact_match",
           "mean_exit_easy", "mean_exit_context")


def _setting_text(setting: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in setting.items())


def read_llm_points(paths: list[str], preset: str) -> pd.DataFrame:
    """One row per operating point of every record; a bad record -> ValueError naming it."""
    rows = []
    for path in paths:
        record = read_checked_json(path, RECORD_SCHEMA, "a decoder-LM run record")
        if record["preset"] != preset:
            raise ValueError(f"{path}: preset {record['preset']!r}, expected {preset!r}")
        method = METHODS.get(record["method"])
        if method is None or not method.generation_lm:
            raise ValueError(f"{path}: method {record['method']!r} is not a decoder-LM generation method")
        for index, point in enumerate(record["points"]):
            rows.append({"task": record["task"], "synthetic": record["synthetic"],
                         "paper_backbone": record["paper_backbone"], "method": record["method"],
                         "variant": record["variant"], "seed": record["seed"], "point": index,
                         "setting": _setting_text(point["setting"]), "kv_mode": point["kv_mode"],
                         **{m: (math.nan if point.get(m) is None else float(point[m])) for m in METRICS}})
    if not rows:
        raise ValueError("no decoder-LM run records")
    return pd.DataFrame(rows)


def _label(method: str, variant: str, setting: str) -> str:
    base = METHODS[method].label(variant)
    return f"{base} ({setting})" if setting else base


def llm_table(points: pd.DataFrame) -> pd.DataFrame:
    keys = ["task", "synthetic", "paper_backbone", "method", "variant", "point", "setting", "kv_mode"]
    grouped = points.groupby(keys, sort=False)
    tidy = grouped[list(METRICS)].mean().reset_index()
    tidy["n_seeds"] = grouped["seed"].nunique().values
    # a swept method's point says its setting; a single-point method is named alone
    tidy["row"] = [_label(m, v, s if METHODS[m].sweep or METHODS[m].family == "static" else "")
                   for m, v, s in zip(tidy["method"], tidy["variant"], tidy["setting"])]
    tidy["matched_to"] = ""
    tidy["shown"] = [not METHODS[m].sweep for m in tidy["method"]]
    for (task, backbone), block in tidy.groupby(["task", "paper_backbone"], sort=False):
        for index, anchor in block.iterrows():
            rival = METHODS[anchor["method"]].paper_rival
            candidates = block[block["method"] == rival]
            if candidates.empty:
                continue
            best = (candidates["speedup"] - anchor["speedup"]).abs().idxmin()
            matched = tidy.loc[best].copy()
            matched["row"] = f"{matched['row']}, matched to {anchor['row']}"
            matched["matched_to"], matched["shown"] = anchor["row"], True
            tidy = pd.concat([tidy, matched.to_frame().T], ignore_index=True)
    tidy["order"] = [METHODS[m].order for m in tidy["method"]]
    tidy = tidy.sort_values(["task", "paper_backbone", "order", "matched_to", "point"], kind="stable")
    return tidy.drop(columns="order").reset_index(drop=True)


def _number(value, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if value is not None and np.isfinite(float(value)) else DASH


def llm_layout(tidy: pd.DataFrame, preset: str) -> Layout:
    synthetic = bool(tidy["synthetic"].any())
    columns = [Column("R-1"), Column("R-2"), Column("R-L"), Column("Speed-up"), Column("Mean exit layer"),
               Column("Tokens/s")]
    if synthetic:
        columns += [Column("Exact match"), Column("Exit (easy)"), Column("Exit (context)")]
    groups = []
    for (task, backbone), block in tidy[tidy["shown"].astype(bool)].groupby(["task", "paper_backbone"], sort=False):
        title = f"{task} (synthetic), {backbone}" if bool(block["synthetic"].iloc[0]) else f"{task}, {backbone}"
        rows = []
        for r in block.itertuples():
            cells = [r.row, _number(r.rouge1), _number(r.rouge2), _number(r.rougeL), format_speedup(float(r.speedup)),
                     _number(r.mean_exit_layer, 2), _number(r.tokens_per_second, 0)]
            if synthetic:
                cells += [_number(r.exact_match), _number(r.mean_exit_easy, 2), _number(r.mean_exit_context, 2)]
            rows.append(cells)
        groups.append((title, rows))
    caption = (f"ConsistentEE for generation, preset {preset}: test ROUGE-1/2/L (F1 x 100, rougeLsum) of greedy "
               "generation with token-level exits; speed-up = exact FLOPs of the full model on the same generated "
               "positions / the method's (K/V filling and the exit rule included); tokens/s wall clock at batch 1; "
               "CALM at the threshold whose speed-up is closest to the row it is matched to. Mean over seeds.")
    return Layout(name=NAME, caption=caption, stub="Method", columns=columns, groups=groups)


def write_llm_table(run_paths: list[str], out_csv: str | os.PathLike, out_md: str | os.PathLike,
                    out_tex: str | os.PathLike, preset: str) -> pd.DataFrame:
    tidy = llm_table(read_llm_points(run_paths, preset))
    write_table(tidy, llm_layout(tidy, preset), out_csv, out_md, out_tex,
                source="workflow/scripts/table_llm_early_exit.py (rule table_llm_early_exit)")
    return tidy


def plot_llm_early_exit(run_paths: list[str], out_png: str | os.PathLike, out_pdf: str | os.PathLike,
                        preset: str) -> None:
    """ROUGE-L against speed-up: one panel per task x backbone, a curve per method (variant), its
    points ordered by speed-up; the full model at 1x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.figure_writer import save_figure

    points = read_llm_points(run_paths, preset)
    keys = ["task", "synthetic", "paper_backbone", "method", "variant", "point"]
    mean = points.groupby(keys, sort=False)[["rougeL", "speedup"]].mean().reset_index()
    panels = list(dict.fromkeys(zip(mean["task"], mean["paper_backbone"])))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    for ax, (task, backbone) in zip(axes[0], panels):
        block = mean[(mean["task"] == task) & (mean["paper_backbone"] == backbone)]
        for (method, variant), curve in block.groupby(["method", "variant"], sort=False):
            chosen = METHODS[method]
            curve = curve.sort_values("speedup")
            ax.plot(curve["speedup"], curve["rougeL"], marker="o", markersize=5,
                    color=chosen.variant_colors.get(variant, chosen.color), label=chosen.label(variant),
                    linestyle="-" if len(curve) > 1 else "none")
        synthetic = " (synthetic)" if bool(block["synthetic"].iloc[0]) else ""
        ax.set_title(f"{task}{synthetic}, {backbone}")
        ax.set_xlabel("speed-up (exact FLOPs vs the full model)")
        ax.set_ylabel("ROUGE-L")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"ConsistentEE for generation vs CALM and truncation (preset {preset})")
    fig.tight_layout()
    save_figure(fig, out_png, out_pdf)
