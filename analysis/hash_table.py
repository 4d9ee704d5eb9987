"""The paper's "effect of hash functions" table, computed from the run records.

Rows: per paper backbone (ElasticBERT-6L, ElasticBERT-12L, ...), the no-exit reference ("Full (no
exit)", method "full") and one row per hash function. Columns per paper task: our test score, mean ±
std over seeds, and our FLOPs speed-up (one per row, as in the paper: the mean over the row's tasks
and seeds; per task in the CSV). Beside them, the published dev score (± std) and speed-up from
data/published/hashee_published.csv, only where the published table/row/backbone/task match.
A cell without runs (or without a published number) is "–".
"""

from __future__ import annotations

import logging
import math
import os
import re

import numpy as np
import pandas as pd
from tabulate import tabulate

from earlyexit.hashing import HASH_NAMES
from earlyexit.io_utils import atomic_path, atomic_write_text

log = logging.getLogger("earlyexit")

PUBLISHED_SOURCE = "data/published/hashee_published.csv"
PUBLISHED_TABLE = "hash_functions"
FULL = "full"
FULL_LABEL = "Full (no exit)"
DISPLAY_NAMES = {"rand-incons": "Rand-incons", "rand-cons": "Rand-cons", "frequency": "Frequency",
                 "mi": "MI", "clustered": "Clustered", FULL: FULL_LABEL}
# The paper's column and row-group orders; anything else follows alphabetically.
PAPER_TASK_ORDER = ("SST-2", "IMDb", "SNLI", "SciTail", "MRPC", "STS-B")
PAPER_BACKBONE_ORDER = ("ElasticBERT-6L", "ElasticBERT-12L", "BERT", "RoBERTa")
METHOD_ORDER = (FULL, *HASH_NAMES)
DASH = "–"

TABLE_COLUMNS = [
    "preset", "paper_backbone", "method", "row_label", "paper_task", "n_seeds",
    "test_mean", "test_std", "dev_mean", "dev_std", "flops_speedup", "flops_speedup_row",
    "published_value", "published_std", "published_speedup",
]


def display_name(method: str) -> str:
    return DISPLAY_NAMES.get(method, method)


def ordered(values, order) -> list:
    """Distinct `values`: those in `order` first, in that order, then the rest sorted."""
    values = set(values)
    return [v for v in order if v in values] + sorted(values - set(order))


def _std(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) >= 2 else math.nan


def _check_runs(runs: pd.DataFrame, preset: str) -> None:
    others = sorted(set(runs["preset"]) - {preset})
    if others:
        raise ValueError(f"runs table holds preset(s) {', '.join(others)}; expected only {preset!r}")
    for paper_col, col in (("paper_task", "task"), ("paper_backbone", "backbone")):
        names = runs.groupby(paper_col)[col].unique()
        for paper_name, ours in names.items():
            if len(ours) > 1:
                raise ValueError(f"{paper_col} {paper_name!r} has runs from several {col}s "
                                 f"({', '.join(sorted(ours))}); the table cannot pool them")


def _published_hash_rows(published_df: pd.DataFrame | None) -> pd.DataFrame:
    if published_df is None:
        return pd.DataFrame(columns=["row", "backbone", "task", "value", "std", "speedup"])
    pub = published_df[(published_df["table"] == PUBLISHED_TABLE) & (published_df["metric"] == "score")]
    return pub[["row", "backbone", "task", "value", "std", "speedup"]]


def hash_function_table(runs_df: pd.DataFrame, published_df: pd.DataFrame | None, preset: str) -> pd.DataFrame:
    """The tidy table (TABLE_COLUMNS): one line per row (paper_backbone, method) x paper_task.

    Ours (n_seeds, test/dev mean and std, per-task and per-row FLOPs speed-up) is NaN where no runs
    exist; published_* is NaN unless the published hash-function table has that row/backbone/task.
    Rows: every paper backbone with runs or published numbers; per backbone "full" (when run) and each
    hash function with runs or published numbers. Methods that are neither are left out."""
    runs = runs_df[runs_df["method"].isin(METHOD_ORDER)]
    skipped = sorted(set(runs_df["method"]) - set(METHOD_ORDER))
    if skipped:
        log.info("hash table: leaving out methods that are not hash functions: %s", ", ".join(skipped))
    _check_runs(runs_df, preset)
    pub = _published_hash_rows(published_df)

    tasks = ordered(list(runs["paper_task"]) + list(pub["task"]), PAPER_TASK_ORDER)
    backbones = ordered(list(runs["paper_backbone"]) + list(pub["backbone"]), PAPER_BACKBONE_ORDER)
    by_cell = {key: group for key, group in runs.groupby(["paper_backbone", "method", "paper_task"])}
    by_row = {key: group for key, group in runs.groupby(["paper_backbone", "method"])}
    pub_cells = {(r.backbone, r.row, r.task): r for r in pub.itertuples(index=False)}

    lines = []
    for backbone in backbones:
        present = set(runs.loc[runs["paper_backbone"] == backbone, "method"])
        present |= set(pub.loc[pub["backbone"] == backbone, "row"]) & set(HASH_NAMES)
        for method in [m for m in METHOD_ORDER if m in present]:
            row_runs = by_row.get((backbone, method))
            row_speedup = float(row_runs["flops_speedup"].mean()) if row_runs is not None else math.nan
            pub_row_speedups = pub.loc[(pub["backbone"] == backbone) & (pub["row"] == method), "speedup"].dropna().unique()
            if len(pub_row_speedups) > 1:
                raise ValueError(f"{PUBLISHED_SOURCE}: {PUBLISHED_TABLE} row {method} ({backbone}) has several "
                                 f"speed-ups {sorted(pub_row_speedups)}; the paper gives one per row")
            for task in tasks:
                cell = by_cell.get((backbone, method, task))
                published = pub_cells.get((backbone, method, task))
                lines.append({
                    "preset": preset, "paper_backbone": backbone, "method": method,
                    "row_label": display_name(method), "paper_task": task,
                    "n_seeds": 0 if cell is None else int(cell["seed"].nunique()),
                    "test_mean": math.nan if cell is None else float(cell["test_score"].mean()),
                    "test_std": math.nan if cell is None else _std(cell["test_score"]),
                    "dev_mean": math.nan if cell is None else float(cell["dev_score"].mean()),
                    "dev_std": math.nan if cell is None else _std(cell["dev_score"]),
                    "flops_speedup": math.nan if cell is None else float(cell["flops_speedup"].mean()),
                    "flops_speedup_row": row_speedup,
                    "published_value": math.nan if published is None else float(published.value),
                    "published_std": math.nan if published is None else float(published.std),
                    "published_speedup": math.nan if published is None else float(published.speedup),
                })
    frame = pd.DataFrame.from_records(lines, columns=TABLE_COLUMNS)
    frame["n_seeds"] = frame["n_seeds"].astype("int64")
    return frame


# ----------------------------------------------------------------------------------------- rendering

def format_score(mean: float, std: float = math.nan) -> str:
    """'81.0 ± 1.41', '81.0' without a std, '–' without a value."""
    if mean is None or not np.isfinite(mean):
        return DASH
    return f"{mean:.1f} ± {std:.2f}" if std is not None and np.isfinite(std) else f"{mean:.1f}"


def format_speedup(value: float) -> str:
    return f"{value:.1f}×" if value is not None and np.isfinite(value) else DASH


def _layout(table: pd.DataFrame):
    """(tasks, published tasks, groups): groups = [(backbone, [[ours cells..., published cells...], ...])]."""
    tasks = list(dict.fromkeys(table["paper_task"]))
    pub_tasks = [t for t in tasks if table.loc[table["paper_task"] == t, "published_value"].notna().any()]
    groups = []
    for backbone in dict.fromkeys(table["paper_backbone"]):
        rows = []
        part = table[table["paper_backbone"] == backbone]
        for method in dict.fromkeys(part["method"]):
            cells = part[part["method"] == method].set_index("paper_task")
            first = cells.iloc[0]
            ours = [format_speedup(first["flops_speedup_row"])]
            ours += [format_score(cells.at[t, "test_mean"], cells.at[t, "test_std"]) for t in tasks]
            pub_speedups = cells["published_speedup"].dropna()
            published = [format_speedup(pub_speedups.iloc[0] if len(pub_speedups) else math.nan)]
            published += [format_score(cells.at[t, "published_value"], cells.at[t, "published_std"]) for t in pub_tasks]
            rows.append([first["row_label"], *ours, *published])
        groups.append((backbone, rows))
    return tasks, pub_tasks, groups


def caption(table: pd.DataFrame, preset: str) -> str:
    seeds = table.loc[table["n_seeds"] > 0, "n_seeds"]
    seed_text = (f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}") if len(seeds) else "0"
    return (f"Effect of hash functions, preset {preset}. Ours (computed from this preset's run records): "
            f"test score (%) of the dev-selected checkpoint, mean ± std over seeds ({seed_text} per cell; "
            f"std with ddof=1, none for one seed), and FLOPs speed-up, the mean over the row's tasks and seeds. "
            f"Columns marked (published) are the paper's numbers (dev scores ± std over seeds) from "
            f"{PUBLISHED_SOURCE}. – = no runs / nothing published.")


def to_markdown(table: pd.DataFrame, preset: str) -> str:
    tasks, pub_tasks, groups = _layout(table)
    header = ["Hash", "Speed-up", *tasks, "Speed-up (published)", *(f"{t} (published)" for t in pub_tasks)]
    body = []
    for backbone, rows in groups:
        body.append([f"*{backbone}*"] + [""] * (len(header) - 1))
        body.extend(rows)
    return f"{caption(table, preset)}\n\n{tabulate(body, headers=header, tablefmt='github')}\n"


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "±": r"$\pm$", "×": r"$\times$", "–": "--"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def to_latex(table: pd.DataFrame, preset: str) -> str:
    tasks, pub_tasks, groups = _layout(table)
    n_ours, n_pub = 1 + len(tasks), 1 + len(pub_tasks)
    n_cols = 1 + n_ours + n_pub
    names = ["Speed-up", *tasks]
    pub_names = ["Speed-up", *pub_tasks]
    lines = [
        r"% " + tex_escape(f"Generated by analysis/hash_table.py from the run records of preset {preset}; "
                           f"published columns from {PUBLISHED_SOURCE}."),
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{l" + "c" * (n_cols - 1) + "}",
        r"\toprule",
        " & " + r"\multicolumn{" + str(n_ours) + "}{c}{" + tex_escape(f"Ours ({preset})") + "} & "
        + r"\multicolumn{" + str(n_pub) + "}{c}{Published} \\\\",
        rf"\cmidrule(lr){{2-{1 + n_ours}}}\cmidrule(lr){{{2 + n_ours}-{n_cols}}}",
        " & ".join(["Hash", *map(tex_escape, names), *map(tex_escape, pub_names)]) + r" \\",
        r"\midrule",
    ]
    for i, (backbone, rows) in enumerate(groups):
        if i:
            lines.append(r"\midrule")
        lines.append(r"\multicolumn{" + str(n_cols) + r"}{l}{\textit{" + tex_escape(backbone) + r"}} \\")
        lines.extend(" & ".join(map(tex_escape, row)) + r" \\" for row in rows)
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        r"\caption{" + tex_escape(caption(table, preset)) + "}",
        r"\label{tab:hash-functions-" + re.sub(r"[^A-Za-z0-9-]+", "-", preset) + "}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def write_hash_table(runs_df: pd.DataFrame, published_df: pd.DataFrame | None, out_csv: str | os.PathLike,
                     out_md: str | os.PathLike, out_tex: str | os.PathLike, preset: str) -> pd.DataFrame:
    """Compute the table (hash_function_table) and write it as CSV, Markdown and LaTeX, each atomically."""
    table = hash_function_table(runs_df, published_df, preset)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    atomic_write_text(out_md, to_markdown(table, preset))
    atomic_write_text(out_tex, to_latex(table, preset))
    return table
