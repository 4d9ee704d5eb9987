"""The claims ledger's files: per-instance outcomes from run records and sweep files, the
summarization runs, timing records and the difficulty study's tables -> analysis.claims.Inputs;
and the ledger written through the one table writer (rule table_claims)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from analysis.bootstrap import Outcome
from analysis.claims import Inputs, MissingOutcomes, Thresholds, claims_frame, claims_layout
from earlyexit.dynamic.matching import operating_point
from earlyexit.plumbing.records import SCHEMAS, read_checked_json


class OutcomeFiles:
    """outcome(path, setting): a run record's test outcome (setting None) or a sweep point's (its
    label in dynamic_curves.csv's `setting`). Files are read and schema-checked once each."""

    def __init__(self):
        self._files: dict[str, dict] = {}
        self._outcomes: dict[tuple, Outcome] = {}

    def _read(self, path: str, sweep: bool) -> dict:
        if path not in self._files:
            schema, what = ("sweep.schema.yaml", "sweep file") if sweep else ("result.schema.yaml", "run record")
            self._files[path] = read_checked_json(path, SCHEMAS / schema, what)
        return self._files[path]

    def __call__(self, path: str, setting: str | None) -> Outcome:
        key = (str(path), setting)
        if key not in self._outcomes:
            self._outcomes[key] = self._load(str(path), setting)
        return self._outcomes[key]

    def _load(self, path: str, setting: str | None) -> Outcome:
        content = self._read(path, sweep=setting is not None)
        name = f"{path}" + (f" ({setting})" if setting is not None else "")
        if setting is None:
            instances = content.get("test_instances")
            if instances is None:
                raise MissingOutcomes(f"{path}: no test_instances (written before records kept them): rerun it")
            if instances["kind"] == "rouge":
                return Outcome("rouge", instances["scores"], None, name)
            return Outcome(content["metric"], instances["predictions"], instances["labels"], name)
        # dynamic_curves.csv names a point by its run's training-time setting too (ConsistentEE's alpha)
        train_setting = content.get("train_setting") or {}
        point = next((p for p in content["points"]
                      if setting in (p["label"], operating_point(train_setting, p["setting"]))), None)
        if point is None:
            raise ValueError(f"{path}: no sweep point {setting!r}")
        if "test_predictions" not in point or "test_labels" not in content:
            raise MissingOutcomes(f"{path}: sweep point {setting!r} has no test_predictions (written before sweeps "
                                  "kept them): rerun it")
        return Outcome(content["metric"], point["test_predictions"], content["test_labels"], name)


SUMMARY_COLUMNS = ["task", "backbone", "method", "variant", "seed", "metric", "test_score", "enc_speedup", "path"]


def summaries_frame(paths: list[str]) -> pd.DataFrame:
    """One row per summarization run record (SUMMARY_COLUMNS; `enc_speedup`: encoder FLOPs speed-up)."""
    rows = []
    for path in paths:
        record = read_checked_json(path, SCHEMAS / "result.schema.yaml", "run record")
        rows.append({**{k: record[k] for k in ("task", "backbone", "method", "variant", "seed", "metric")},
                     "test_score": float(record["test"]["score"]), "enc_speedup": float(record["speedup"]["enc"]),
                     "path": Path(path).as_posix()})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _table(path) -> pd.DataFrame | None:
    if not path:
        return None
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{path}: cannot read table ({str(error).strip().splitlines()[0]})") from None


def write_claims(*, runs_csv, curves_csv, summaries: list[str], timing: list[str], difficulty_human: str | None,
                 difficulty_model: str | None, thresholds: dict | None, preset: str, out_csv: str | os.PathLike,
                 out_md: str | os.PathLike, out_tex: str | os.PathLike, pretrained_pairs: dict | None = None) -> pd.DataFrame:
    """Decide every claim on the preset's files and write claims.{csv,md,tex}."""
    from analysis.collect import read_curves_csv, read_runs_csv
    from analysis.table_writer import write_table

    inputs = Inputs(
        runs=read_runs_csv(runs_csv), curves=read_curves_csv(curves_csv), outcome=OutcomeFiles(),
        summaries=summaries_frame(summaries) if summaries else None,
        timing=[read_checked_json(p, SCHEMAS / "timing.schema.yaml", "timing record") for p in timing],
        difficulty_human=_table(difficulty_human), difficulty_model=_table(difficulty_model),
        pretrained_pairs=dict(pretrained_pairs or {}))
    frame = claims_frame(inputs, Thresholds.from_config(thresholds))
    write_table(frame, claims_layout(frame, preset), out_csv, out_md, out_tex,
                source=f"analysis/claims.py from the records of preset {preset}")
    return frame
