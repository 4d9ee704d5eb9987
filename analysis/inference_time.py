"""The actual-inference-time comparison (paper figure): wall-clock speed-up against FLOPs speed-up.

Reads the timing records (results/<preset>/timing/<task>/<backbone>.json, written by
earlyexit.cost.timing through rule time_inference; schema workflow/schemas/timing.schema.yaml). One
panel per batch size; one point per method/variant x task x backbone: x = the FLOPs speed-up of the
timed pass against the backbone's own full model, y = the full model's median wall time over the
method's, at that batch size. The y = x line is where wall time follows FLOPs exactly; points below
it lose to overheads (exit decisions, host syncs, small batches), points above it gain more than
FLOPs say. Colours come from the methods registry, markers tell the tasks apart. Every method ran
through the same runner and fast linear path; a grey cross marks the plain HF model (the full
model's weights through HF's own forward with PyTorch's default kernels, at 1.0x FLOPs) as a
reference point.
"""

from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis.display import row_color  # noqa: E402
from analysis.figure_writer import save_figure  # noqa: E402
from earlyexit.methods import METHODS  # noqa: E402
from earlyexit.plumbing.records import SCHEMAS, read_checked_json  # noqa: E402

TIMING_SCHEMA = SCHEMAS / "timing.schema.yaml"
TASK_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<", ">")
PLAIN_COLOR = "0.6"     # light grey: readable over the black star of the full model
POINT_COLUMNS = ["task", "backbone", "method", "variant", "label", "reference", "setting", "batch_size",
                 "flops_speedup", "flops_speedup_reference_depth", "wall_speedup", "median_seconds", "device",
                 "threads", "dtype"]


def read_timing(path: str | os.PathLike, schema_path: str | os.PathLike = TIMING_SCHEMA) -> dict:
    """One timing record; ValueError "<file>: <where>: <message>" when it does not pass the schema."""
    record = read_checked_json(path, schema_path, "timing record")
    return record


def _point(record: dict, timing: dict, **entry) -> dict:
    return {"task": record["task"], "backbone": record["backbone"], **entry, "batch_size": timing["batch_size"],
            "wall_speedup": timing["wall_speedup"], "median_seconds": timing["median_seconds"],
            "device": record["device"], "threads": record["threads"], "dtype": record.get("dtype", "float32")}


def timing_points(records: list[dict]) -> pd.DataFrame:
    """One row per entry x batch size of every record (POINT_COLUMNS; `flops_speedup` against the
    own full model, the figure's x; `setting` as JSON text)."""
    rows = [_point(r, t, method=e["method"], variant=e["variant"], label=e["label"], reference=bool(e["reference"]),
                   setting=None if e["setting"] is None else json.dumps(e["setting"], sort_keys=True),
                   flops_speedup=e["flops_speedup_vs_own_full"], flops_speedup_reference_depth=e["flops_speedup"])
            for r in records for e in r["entries"] for t in e["timings"]]
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


def plain_timings(records: list[dict]) -> pd.DataFrame:
    """The plain HF forward's rows of every record that has one (POINT_COLUMNS; method and variant
    empty: it is no method of the registry, but the full model's weights, hence its FLOPs)."""
    rows = [_point(r, t, method="", variant="", label=r["plain_hf"]["label"], reference=False, setting=None,
                   flops_speedup=1.0, flops_speedup_reference_depth=_full_flops_speedup(r))
            for r in records if "plain_hf" in r for t in r["plain_hf"]["timings"]]
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


def _full_flops_speedup(record: dict) -> float | None:
    """The full model's FLOPs speed-up against the family's reference depth in this record."""
    return next((e["flops_speedup"] for e in record["entries"] if e["reference"]), None)


def plain_points(records: list[dict]) -> pd.DataFrame:
    """The plain HF reference point of each record that has one: task, backbone, batch_size, wall_speedup."""
    return plain_timings(records)[["task", "backbone", "batch_size", "wall_speedup"]]


def registry_order(row) -> tuple:
    """The reference row first, then the methods' order, variants as the method declares them."""
    method = METHODS.get(row.method)
    if method is None:
        return (1, float("inf"), row.method, 0)
    variants = list(method.variants)
    return (not row.reference, method.order, row.method, variants.index(row.variant) if row.variant in variants else 0)


def legend_label(row) -> str:
    """A variant's label with its method's name where the method has several (HashEE's hashes)."""
    method = METHODS.get(row.method)
    if method is None or len(method.variants) == 1 or row.label.startswith(method.paper_name):
        return row.label
    return f"{method.paper_name} ({row.label})"


def plot_inference_time(timing_paths: list, out_png, out_pdf, preset: str) -> pd.DataFrame:
    """The figure from timing records (PNG + PDF, atomically); returns the plotted points."""
    records = [read_timing(p) for p in timing_paths]
    points, plain = timing_points(records), plain_points(records)
    if points.empty:
        raise ValueError(f"{timing_paths[0] if timing_paths else '(no timing files)'}: no timed entries to plot")
    batch_sizes = sorted(points["batch_size"].unique())
    tasks = sorted(points["task"].unique())
    markers = {t: TASK_MARKERS[i % len(TASK_MARKERS)] for i, t in enumerate(tasks)}
    rows = sorted(dict.fromkeys(points[["method", "variant", "label", "reference"]].itertuples(index=False)),
                  key=registry_order)
    devices = ", ".join(sorted({f"{d}, {t} thread{'s' if t != 1 else ''}"
                                for d, t in zip(points["device"], points["threads"])}))
    fig, axes = plt.subplots(1, len(batch_sizes), figsize=(4.0 * len(batch_sizes), 4.2), squeeze=False)
    top = max(points["flops_speedup"].max(), points["wall_speedup"].max(),
              plain["wall_speedup"].max() if not plain.empty else 0) * 1.1
    for ax, batch_size in zip(axes[0], batch_sizes):
        ax.plot([0, top], [0, top], linestyle="--", color="0.5", linewidth=1, zorder=1)
        for p in points[points["batch_size"] == batch_size].itertuples(index=False):
            ax.plot(p.flops_speedup, p.wall_speedup, linestyle="none", marker="*" if p.reference else markers[p.task],
                    markersize=12 if p.reference else 7, color=row_color(p.method, p.variant), zorder=3)
        for p in plain[plain["batch_size"] == batch_size].itertuples(index=False):
            # on top: it sits within a marker's width of the full model's star (both near 1.0x)
            ax.plot(1.0, p.wall_speedup, linestyle="none", marker="x", markersize=9, markeredgewidth=2,
                    color=PLAIN_COLOR, zorder=4)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_aspect("equal")
        ax.grid(True, linewidth=0.4, alpha=0.6)
        ax.set_title(f"batch size {batch_size}", fontsize=10)
        ax.set_xlabel("FLOPs speed-up vs own full model (×)")
        ax.set_ylabel("wall-clock speed-up vs full model (×)")
    handles = [Line2D([], [], linestyle="none", marker="*" if r.reference else "o", markersize=10 if r.reference else 7,
                      color=row_color(r.method, r.variant), label=legend_label(r)) for r in rows]
    if not plain.empty:
        handles.append(Line2D([], [], linestyle="none", marker="x", markersize=9, markeredgewidth=2, color=PLAIN_COLOR,
                              label="plain HF forward (default kernels)"))
    handles += [Line2D([], [], linestyle="none", marker=markers[t], markersize=7, color="0.35", label=t) for t in tasks]
    handles.append(Line2D([], [], linestyle="--", color="0.5", label="y = x"))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    fig.suptitle(f"Inference time vs FLOPs, preset {preset} (test split, median of passes; {devices})", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out_png, out_pdf)
    return points
