"""The study's artifacts from run records: the difficulty table (ours mean ± std over seeds beside
the published numbers), the human-difficulty table, and two figures. Numbers are percentages."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.table_writer import Column, Layout
from difficulty.settings import PREDICTORS

DISPLAY = {"majority": "Majority", "linear-m": "Linear-M", "linear-b": "Linear-B", "bilstm": "BiLSTM", "bert": "BERT"}
METRICS = ("precision", "recall", "f1")
LEVEL_TITLES = {"sentence": "Sentence-level", "token": "Token-level"}


def published_cells(published: pd.DataFrame) -> dict:
    """{(level, predictor key): {metric: value}} from the `difficulty` rows of the published numbers
    (analysis.published.load_published; `backbone` holds the level, `row` the paper's model name)."""
    keys = {v: k for k, v in DISPLAY.items()}
    out: dict = {}
    for row in published[published["table"] == "difficulty"].itertuples():
        predictor = keys.get(str(row.row))
        if predictor is None or str(row.metric) not in METRICS:
            continue
        out.setdefault((str(row.backbone).lower(), predictor), {})[str(row.metric)] = float(row.value)
    return out


def difficulty_frame(records: list[dict], published: dict) -> pd.DataFrame:
    """One row per level x predictor (published rows included even when not run)."""
    rows = []
    for level in ("sentence", "token"):
        for predictor in PREDICTORS[level]:
            runs = [r for r in records if r["level"] == level and r["predictor"] == predictor]
            pub = published.get((level, predictor), {})
            if not runs and not pub:
                continue
            row = {"level": level, "predictor": DISPLAY[predictor], "seeds": len(runs)}
            for metric in METRICS:
                values = np.asarray([100 * r["test"][metric] for r in runs], dtype=float)
                row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
                row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
                row[f"published_{metric}"] = pub.get(metric, math.nan)
            rows.append(row)
    return pd.DataFrame(rows)


def _cell(mean, std) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.1f}" if math.isnan(std) else f"{mean:.1f} ± {std:.1f}"


def _pub(value) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}"


def difficulty_layout(frame: pd.DataFrame, preset: str) -> Layout:
    """Ours (mean ± std over seeds) beside the published P / R / F1, a row group per level."""
    columns = [*(Column(m, "ours") for m in ("P", "R", "F1")), *(Column(m, "published") for m in ("P", "R", "F1")),
               Column("seeds")]
    groups = []
    for level, part in frame.groupby("level", sort=False):
        rows = []
        for r in part.itertuples():
            ours = [_cell(getattr(r, f"{m}_mean"), getattr(r, f"{m}_std")) for m in METRICS]
            pub = [_pub(getattr(r, f"published_{m}")) for m in METRICS]
            rows.append([r.predictor, *ours, *pub, str(r.seeds)])
        groups.append((LEVEL_TITLES[level], rows))
    return Layout(name=f"difficulty_model-{preset}", stub="Model", columns=columns, groups=groups,
                  caption=f"Model-defined difficulty, preset `{preset}` (%, test split; positive class = layer wrong)")


def human_frame(records: list[dict]) -> pd.DataFrame:
    rows = []
    for predictor in PREDICTORS["human"]:
        runs = sorted((r for r in records if r["predictor"] == predictor), key=lambda r: r["seed"])
        if not runs:
            continue
        test = np.asarray([100 * r["test"]["accuracy"] for r in runs])
        train = np.asarray([100 * r["train"]["accuracy"] for r in runs])
        rows.append({"predictor": DISPLAY[predictor], "seeds": len(runs),
                     "train_accuracy_mean": float(train.mean()),
                     "test_accuracy_mean": float(test.mean()),
                     "test_accuracy_std": float(test.std(ddof=1)) if len(runs) > 1 else math.nan,
                     "chance": 100 * runs[0]["chance_test"]["chance"], "test_rows": runs[0]["rows"]["test"],
                     "p_values": ";".join(f"{r['chance_test']['p_value']:.3g}" for r in runs),
                     "max_p_value": max(r["chance_test"]["p_value"] for r in runs)})
    return pd.DataFrame(rows)


def human_layout(frame: pd.DataFrame, preset: str) -> Layout:
    """Train and test accuracy against chance, with the per-seed binomial p-values."""
    columns = [Column("train acc"), Column("test acc"), Column("chance"), Column("binomial p (per seed, one-sided)"),
               Column("seeds")]
    rows = [[r.predictor, f"{r.train_accuracy_mean:.1f}", _cell(r.test_accuracy_mean, r.test_accuracy_std),
             f"{r.chance:.1f}", r.p_values.replace(";", ", "), str(r.seeds)] for r in frame.itertuples()]
    return Layout(name=f"difficulty_human-{preset}", stub="Model", columns=columns, groups=[(None, rows)],
                  caption=f"Human-defined difficulty (simple vs difficult SNLI pairs), preset `{preset}` (%). "
                          "Published: the paper reports that BERT barely beats chance on the test split (figure only).")


def plot_human_curves(records: list[dict]):
    """Train (dashed) and test (solid) accuracy per epoch, mean over seeds, with chance; returns the figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    chance = None
    for predictor in PREDICTORS["human"]:
        runs = [r for r in records if r["predictor"] == predictor]
        if not runs:
            continue
        chance = 100 * runs[0]["chance_test"]["chance"]
        colour = next(colours)
        if predictor == "majority":
            ax.axhline(100 * np.mean([r["test"]["accuracy"] for r in runs]), color=colour, ls=":", label="Majority (test)")
            continue
        epochs = min(len(r["history"]) for r in runs)
        x = np.arange(1, epochs + 1)
        for split, style in (("train", "--"), ("test", "-")):
            y = np.mean([[100 * h[f"{split}_accuracy"] for h in r["history"][:epochs]] for r in runs], axis=0)
            ax.plot(x, y, style, color=colour, marker="o", ms=3, label=f"{DISPLAY[predictor]} ({split})")
    if chance is not None:
        ax.axhline(chance, color="grey", lw=1, label="chance")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Human-defined difficulty: simple vs difficult")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_layer_labels(datasets: dict):
    """Per level: fraction of cells whose layer is correct (train/test bars) and the distribution
    of the exit layer (earliest layer from which all later layers are correct); returns the figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from difficulty.formats import label_cells
    from difficulty.targets import exit_layer

    fig, axes = plt.subplots(2, len(datasets), figsize=(5 * len(datasets), 6), squeeze=False)
    for col, (level, splits) in enumerate(datasets.items()):
        top, bottom = axes[0, col], axes[1, col]
        width = 0.4
        for k, (split, data) in enumerate(splits.items()):
            cells = label_cells(data)
            layers = np.arange(1, cells.shape[1] + 1)
            top.bar(layers + (k - 0.5) * width, cells.mean(axis=0), width, label=split)
            exits = np.bincount(exit_layer(cells) - 1, minlength=cells.shape[1] + 1) / len(cells)
            bottom.bar(np.arange(1, cells.shape[1] + 2) + (k - 0.5) * width, exits, width, label=split)
        n = label_cells(next(iter(splits.values()))).shape[1]
        top.set_title(f"{LEVEL_TITLES[level]}: layer classifier correct")
        top.set_xticks(range(1, n + 1))
        top.set_xlabel("layer")
        top.set_ylabel("fraction of cells labelled 1")
        top.set_ylim(0, 1.15)
        top.legend(loc="upper left", ncol=2, fontsize=8)
        bottom.set_xticks(range(1, n + 2), [*map(str, range(1, n + 1)), "never"], fontsize=7)
        bottom.set_title("exit layer (correct from here on)")
        bottom.set_xlabel("layer")
        bottom.set_ylabel("fraction of cells")
    fig.tight_layout()
    return fig
