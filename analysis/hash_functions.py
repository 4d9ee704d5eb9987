"""The paper's "effect of hash functions" table, like for like, from the run records.

The paper reports, per backbone (ElasticBERT-6L, -12L) and hash function, the DEV score (mean ± std
over seeds) on SST-2, SNLI and MRPC and one FLOPs speed-up per row over those tasks, measured against
the 12-layer model. So, per row (a method × variant of the registry with this table among its
`tables`; reference rows first) and per task shown:

- ours: dev score, test score and best-on-test score (the authors' test-set selection), each
  mean ± std over seeds; the published dev score sits beside our dev score, for real tasks only;
- per row: our FLOPs speed-up against the backbone family's reference depth (runs.csv
  `flops_speedup`, the paper's convention) and against the run's own full model
  (`flops_speedup_vs_own_full`), each the mean over the row's runs on exactly the tasks shown;
  beside them the paper's one speed-up per row.

Tasks shown: those whose paper task is a column of the published table (runs of other tasks stay
in runs.csv and the figure). A synthetic task is named as one and never gets a published number.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import pandas as pd

from analysis.display import Row, ordered, table_rows, task_order, task_title
from analysis.published import PUBLISHED_NAME
from analysis.table_writer import DASH, Column, Layout, format_score, format_speedup, write_table

log = logging.getLogger("earlyexit")

NAME = "hash_functions"   # the artifact, the published table and the registry's table name

TABLE_COLUMNS = [
    "preset", "paper_backbone", "method", "variant", "label", "reference", "task", "paper_task", "synthetic",
    "n_seeds", "dev_mean", "dev_std", "test_mean", "test_std", "best_on_test_mean", "best_on_test_std",
    "task_flops_speedup", "reference_layers", "row_tasks", "flops_speedup", "flops_speedup_vs_own_full",
    "published_dev_mean", "published_dev_std", "published_speedup",
]


def _mean(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.mean()) if len(values) else math.nan


def _std(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.std(ddof=1)) if len(values) >= 2 else math.nan


def _check_runs(runs: pd.DataFrame, preset: str) -> None:
    others = sorted(set(runs["preset"]) - {preset})
    if others:
        raise ValueError(f"runs table holds preset(s) {', '.join(others)}; expected only {preset!r}")
    for paper_name, ours in runs.groupby("paper_backbone")["backbone"].unique().items():
        if len(ours) > 1:
            raise ValueError(f"paper_backbone {paper_name!r} has runs from several backbones "
                             f"({', '.join(sorted(ours))}); the table cannot pool them")


def _published_scores(published: pd.DataFrame | None) -> pd.DataFrame:
    if published is None:
        return pd.DataFrame(columns=["row", "backbone", "task", "value", "std", "speedup"])
    pub = published[(published["table"] == NAME) & (published["metric"] == "score")]
    return pub[["row", "backbone", "task", "value", "std", "speedup"]].reset_index(drop=True)


def _row_published_speedup(pub: pd.DataFrame, row: Row, backbone: str) -> float:
    speedups = pub.loc[(pub["row"] == row.published_row(NAME)) & (pub["backbone"] == backbone), "speedup"]
    speedups = speedups.dropna().unique()
    if len(speedups) > 1:
        raise ValueError(f"{PUBLISHED_NAME}: {NAME} row {row.published_row(NAME)} ({backbone}) has several "
                         f"speed-ups {sorted(speedups)}; the paper gives one per row")
    return float(speedups[0]) if len(speedups) else math.nan


def default_paper_tasks(runs_df: pd.DataFrame, published_df: pd.DataFrame | None) -> list[str]:
    """The published table's columns (SST-2, SNLI, MRPC), or every paper task run when none is given."""
    if published_df is None:
        return sorted(set(runs_df["paper_task"]))
    return list(dict.fromkeys(_published_scores(published_df)["task"]))


def hash_functions_frame(runs_df: pd.DataFrame, published_df: pd.DataFrame | None, preset: str,
                         paper_tasks: list[str] | None = None) -> pd.DataFrame:
    """The tidy table (TABLE_COLUMNS): one line per shown row (paper_backbone × method × variant) × task.

    `paper_tasks`: the paper tasks whose runs are shown (default: the published table's columns, or
    every task run when there is no published frame). A row is shown when it has runs or, for a
    backbone with runs, published numbers on a shown real task. Published columns are NaN for
    synthetic tasks, always."""
    _check_runs(runs_df, preset)
    rows = table_rows(NAME)
    pub = _published_scores(published_df)
    if paper_tasks is None:
        paper_tasks = default_paper_tasks(runs_df, published_df)
    in_table = {(r.method, r.variant) for r in rows}
    pairs = list(zip(runs_df["method"], runs_df["variant"]))
    runs = runs_df[np.array([p in in_table for p in pairs], dtype=bool)]
    left_out = sorted({f"{m}/{v}" for m, v in pairs if (m, v) not in in_table})
    if left_out:
        log.info("%s: leaving out runs of methods not in this table: %s", NAME, ", ".join(left_out))
    outside = sorted(set(runs["task"][~runs["paper_task"].isin(paper_tasks)]))
    if outside:
        log.info("%s: tasks outside the paper's table (%s) are left out: %s", NAME, ", ".join(paper_tasks),
                 ", ".join(outside))
    runs = runs[runs["paper_task"].isin(paper_tasks)]

    tasks = task_order(runs, paper_tasks)
    real_paper_tasks = {paper for _, paper, synthetic in tasks if not synthetic}
    backbones = ordered(runs["paper_backbone"], list(pub["backbone"]))
    pub_cells = {(r.row, r.backbone, r.task): r for r in pub.itertuples(index=False)}
    lines = []
    for backbone in backbones:
        here = runs[runs["paper_backbone"] == backbone]
        for row in rows:
            row_runs = here[(here["method"] == row.method) & (here["variant"] == row.variant)]
            published_row = row.published_row(NAME)
            has_published = any((published_row, backbone, t) in pub_cells for t in real_paper_tasks)
            if row_runs.empty and not has_published:
                continue
            pub_speedup = _row_published_speedup(pub, row, backbone) if real_paper_tasks else math.nan
            layers = sorted(set(row_runs["reference_layers"]))
            if len(layers) > 1:
                raise ValueError(f"{backbone} {row.label}: runs measured against several reference depths {layers}")
            for task, paper_task, synthetic in tasks:
                cell = row_runs[row_runs["task"] == task]
                published = None if synthetic else pub_cells.get((published_row, backbone, paper_task))
                lines.append({
                    "preset": preset, "paper_backbone": backbone, "method": row.method, "variant": row.variant,
                    "label": row.label, "reference": row.reference, "task": task, "paper_task": paper_task,
                    "synthetic": synthetic, "n_seeds": int(cell["seed"].nunique()),
                    "dev_mean": _mean(cell["dev_score"]), "dev_std": _std(cell["dev_score"]),
                    "test_mean": _mean(cell["test_score"]), "test_std": _std(cell["test_score"]),
                    "best_on_test_mean": _mean(cell["best_on_test_score"]),
                    "best_on_test_std": _std(cell["best_on_test_score"]),
                    "task_flops_speedup": _mean(cell["flops_speedup"]),
                    "reference_layers": layers[0] if layers else None,
                    "row_tasks": ";".join(t for t, _, _ in tasks if t in set(row_runs["task"])),
                    "flops_speedup": _mean(row_runs["flops_speedup"]),
                    "flops_speedup_vs_own_full": _mean(row_runs["flops_speedup_vs_own_full"]),
                    "published_dev_mean": math.nan if published is None else float(published.value),
                    "published_dev_std": math.nan if published is None else float(published.std),
                    "published_speedup": math.nan if synthetic else pub_speedup,
                })
    frame = pd.DataFrame.from_records(lines, columns=TABLE_COLUMNS)
    frame["n_seeds"] = frame["n_seeds"].astype("int64")
    frame["reference_layers"] = frame["reference_layers"].astype("Int64")   # empty for a row without runs
    frame["reference"] = frame["reference"].astype(bool)
    frame["synthetic"] = frame["synthetic"].astype(bool)
    return frame


# ----------------------------------------------------------------------------------------- display

def _columns(table: pd.DataFrame) -> tuple[list[tuple[str, str, bool]], bool]:
    tasks = list(dict.fromkeys(zip(table["task"], table["paper_task"], table["synthetic"].astype(bool))))
    with_published = bool(table.loc[~table["synthetic"].astype(bool), "published_dev_mean"].notna().any()
                          or table["published_speedup"].notna().any())
    return tasks, with_published


def _caption(table: pd.DataFrame, preset: str, tasks, with_published: bool, paper_tasks: list[str]) -> str:
    seeds = table.loc[table["n_seeds"] > 0, "n_seeds"]
    seed_text = (f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}") if len(seeds) else "0"
    depths = table.dropna(subset=["reference_layers"]).groupby("paper_backbone", sort=False)["reference_layers"].first()
    depth_text = ", ".join(f"{b}: {int(d)} layers" for b, d in depths.items()) or "none run"
    shown = ", ".join(task for task, _, _ in tasks) or "none"
    parts = [
        f"Effect of hash functions, preset {preset}. Ours, from this preset's run records: dev and test score (%) "
        f"of the dev-selected checkpoint, and best on test (the best test score seen during training, the authors' "
        f"selection; for comparison only), mean ± std over seeds ({seed_text} per cell; std with ddof=1, none for "
        f"one seed).",
        f"Speed-up (ours): FLOPs of the backbone family's reference-depth model ({depth_text}) over the run's FLOPs, "
        f"the paper's convention (runs.csv column flops_speedup), mean over the row's seeds on exactly the tasks "
        f"shown ({shown}). Speed-up vs own full (ours): the same against the run's own full model "
        f"(flops_speedup_vs_own_full).",
    ]
    if with_published:
        pub_tasks = ", ".join(dict.fromkeys(table.loc[table["published_dev_mean"].notna(), "paper_task"]))
        parts.append(f"Published: the paper's dev scores ± std over seeds (shown beside real tasks only: {pub_tasks}) "
                     f"and its one speed-up per row, over the paper's columns ({', '.join(paper_tasks)}), from "
                     f"{PUBLISHED_NAME}.")
    if any(synthetic for _, _, synthetic in tasks):
        parts.append("Synthetic tasks are the suite's generated stand-ins: no published number is shown beside them.")
    parts.append(f"{DASH} = no runs / nothing published.")
    return " ".join(parts)


def hash_functions_layout(table: pd.DataFrame, preset: str, paper_tasks: list[str]) -> Layout:
    """The display: row groups per paper backbone, speed-up columns, then per task dev (ours), dev
    (published, real tasks only), test and best on test."""
    tasks, with_published = _columns(table)
    columns = [Column("ours", "Speed-up", "Speed-up (ours)"),
               Column("ours vs own full", "Speed-up", "Speed-up vs own full (ours)")]
    if with_published:
        columns.append(Column("published", "Speed-up", "Speed-up (published)"))
    for task, paper_task, synthetic in tasks:
        title = task_title(task, paper_task, synthetic)
        columns.append(Column("dev", title, f"{title} dev"))
        if with_published and not synthetic:
            columns.append(Column("dev (published)", title, f"{title} dev (published)"))
        columns += [Column("test", title, f"{title} test"), Column("best on test", title, f"{title} best on test")]
    groups = []
    for backbone, part in table.groupby("paper_backbone", sort=False):
        rows = []
        for _, cells in part.groupby(["method", "variant"], sort=False):
            first = cells.iloc[0]
            row = [first["label"], format_speedup(first["flops_speedup"]),
                   format_speedup(first["flops_speedup_vs_own_full"])]
            if with_published:
                real = cells[~cells["synthetic"].astype(bool)]
                row.append(format_speedup(real["published_speedup"].iloc[0] if len(real) else math.nan))
            by_task = cells.set_index("task")
            for task, _, synthetic in tasks:
                c = by_task.loc[task]
                row.append(format_score(c["dev_mean"], c["dev_std"]))
                if with_published and not synthetic:
                    row.append(format_score(c["published_dev_mean"], c["published_dev_std"]))
                row += [format_score(c["test_mean"], c["test_std"]),
                        format_score(c["best_on_test_mean"], c["best_on_test_std"])]
            rows.append(row)
        groups.append((backbone, rows))
    return Layout(name=f"{NAME}-{preset}", caption=_caption(table, preset, tasks, with_published, paper_tasks),
                  stub="Method", columns=columns, groups=groups)


def write_hash_functions(runs_df: pd.DataFrame, published_df: pd.DataFrame | None, out_csv: str | os.PathLike,
                         out_md: str | os.PathLike, out_tex: str | os.PathLike, preset: str) -> pd.DataFrame:
    """Compute the table (hash_functions_frame) and write it as CSV, Markdown and LaTeX."""
    paper_tasks = default_paper_tasks(runs_df, published_df)
    table = hash_functions_frame(runs_df, published_df, preset, paper_tasks)
    write_table(table, hash_functions_layout(table, preset, paper_tasks), out_csv, out_md, out_tex,
                source=f"analysis/hash_functions.py from the run records of preset {preset}")
    return table
