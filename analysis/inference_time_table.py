"""The numbers behind the inference-time figure, as a table: per task x backbone, every timed method at
its operating point (the full model first, then the registry's order), its FLOPs speed-up against the
own full model and against the family's reference depth (the paper's convention), and per batch size
the median wall-clock seconds over the test split and the wall speed-up against the full model; the
plain HF forward (default kernels) last, as the figure's grey cross. Read from the same timing
records as the figure (analysis/inference_time.py).
"""

from __future__ import annotations

import json
import os

import pandas as pd

from analysis.inference_time import legend_label, plain_timings, read_timing, registry_order, timing_points
from analysis.table_writer import DASH, Column, Layout, write_table

NAME = "inference_time"
# the tidy CSV names its speed-ups as runs.csv does: flops_speedup against the family's reference depth
TIDY_NAMES = {"flops_speedup": "flops_speedup_vs_own_full", "flops_speedup_reference_depth": "flops_speedup"}


def inference_time_frame(records: list[dict]) -> pd.DataFrame:
    """The figure's points, then the plain HF forward's rows (method empty), with runs.csv's names."""
    parts = [frame for frame in (timing_points(records), plain_timings(records)) if not frame.empty]
    return (pd.concat(parts, ignore_index=True) if parts else timing_points([])).rename(columns=TIDY_NAMES)


def _setting_cell(setting) -> str:
    if setting is None or (isinstance(setting, float) and pd.isna(setting)):
        return DASH
    return ", ".join(f"{k} {v}" for k, v in json.loads(setting).items())


def _speedup_cell(value) -> str:
    return DASH if value is None or pd.isna(value) else f"{value:.2f}×"


def inference_time_layout(table: pd.DataFrame, preset: str) -> Layout:
    batch_sizes = sorted(table["batch_size"].unique())
    columns = [Column("setting"), Column("vs own full", "FLOPs speed-up", "FLOPs speed-up vs own full"),
               Column("vs reference depth", "FLOPs speed-up", "FLOPs speed-up vs reference depth")]
    for b in batch_sizes:
        group = f"batch {b}"
        columns += [Column("median s", group), Column("wall speed-up", group)]
    groups = []
    for (task, backbone), part in table.groupby(["task", "backbone"], sort=True):
        timed = part[part["method"] != ""]
        keys = sorted(dict.fromkeys(timed[["method", "variant", "label", "reference"]].itertuples(index=False)),
                      key=registry_order)
        ordered = [(timed[(timed["method"] == k.method) & (timed["variant"] == k.variant)], legend_label(k))
                   for k in keys]
        plain = part[part["method"] == ""]
        if not plain.empty:
            ordered.append((plain, plain["label"].iloc[0]))
        rows = []
        for entry, label in ordered:
            first = entry.iloc[0]
            row = [label, _setting_cell(first["setting"]), _speedup_cell(first["flops_speedup_vs_own_full"]),
                   _speedup_cell(first["flops_speedup"])]
            for b in batch_sizes:
                at = entry[entry["batch_size"] == b]
                row += ([DASH, DASH] if at.empty else
                        [f"{at['median_seconds'].iloc[0]:.3f}", f"{at['wall_speedup'].iloc[0]:.2f}×"])
            rows.append(row)
        groups.append((f"{task}, {backbone}", rows))
    machines = "; ".join(sorted({f"{d}, {t} thread{'s' if t != 1 else ''}, {x}"
                                 for d, t, x in zip(table["device"], table["threads"], table["dtype"])}))
    caption = (f"Inference time, preset {preset}: median wall-clock seconds over the test split and the full "
               f"model's median over each method's (same batch size), beside the exact-FLOPs speed-up against "
               f"the own full model (what the wall time is compared with) and against the backbone family's "
               f"reference depth (the paper's convention, as in every other table); every method through the "
               f"same runner and fast linear path, the plain HF forward (default kernels) as a reference. "
               f"{machines}.")
    layout = Layout(name=f"{NAME}-{preset}", caption=caption, stub="Method", columns=columns, groups=groups)
    layout.check()
    return layout


def write_inference_time_table(timing_paths: list, out_csv: str | os.PathLike, out_md: str | os.PathLike,
                               out_tex: str | os.PathLike, preset: str) -> pd.DataFrame:
    """The table from timing records (CSV, Markdown, LaTeX, each atomically)."""
    table = inference_time_frame([read_timing(p) for p in timing_paths])
    if table.empty:
        raise ValueError(f"{timing_paths[0] if timing_paths else '(no timing files)'}: no timed entries")
    write_table(table, inference_time_layout(table, preset), out_csv, out_md, out_tex,
                source=f"analysis/inference_time_table.py from the timing records of preset {preset}")
    return table
