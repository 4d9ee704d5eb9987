"""Run records -> one tidy table: a row per training run (task x backbone x method x seed).

Each record is results/<preset>/runs/<task>/<backbone>/<method>/<variant>/seed<seed>.json, written by
earlyexit.runs.experiment and described by workflow/schemas/result.schema.yaml. Scores are percent.
Speed-ups: `flops_speedup` / `elue_speedup` against the backbone family's reference depth
(`reference_layers`, the paper's convention); `*_vs_own_full` against the run's own full model.

Dynamic methods (family "dynamic") are trained once and swept at inference (earlyexit/dynamic/sweeps.py);
a method with a training-time sweep (e.g. ConsistentEE's alpha) trains one run per value, and all
runs of a variant form one curve. Per seed, the row carries the curve's MATCHED operating point
(earlyexit/dynamic/matching.py, rule match_operating_points) in the same columns (dev and test score,
speed-ups, mean exit layer), names it in `operating_point` (e.g. "entropy=0.4",
"alpha=0.02,policy_threshold=0.5") and points `path` at the run that holds it; the curve's other
runs make no row. Where the method's exit rule cannot run the task, the scores and speed-ups are
empty and `exit_unsupported` says why (tables show "–"). Every sweep point goes to
dynamic_curves.csv (`curves_frame`). One row per (method, variant, seed), the same columns for every family.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from earlyexit.data.prepare import substitute_files_text
from earlyexit.plumbing.files import atomic_path
from earlyexit.plumbing.records import SCHEMAS, read_checked_json, schema_problem

RESULT_SCHEMA = SCHEMAS / "result.schema.yaml"

RUN_COLUMNS = [
    "preset", "task", "paper_task", "synthetic", "backbone", "paper_backbone", "num_layers", "method", "variant",
    "label", "family", "seed", "metric", "dev_score", "test_score", "best_on_test_score", "reference_layers",
    "flops_speedup", "elue_speedup", "flops_speedup_vs_own_full", "elue_speedup_vs_own_full", "mean_exit_layer",
    "train_seconds", "eval_seconds", "device", "path", "operating_point", "exit_unsupported", "split_files",
    "upper_exit_margin",
]
TEXT_COLUMNS = ["preset", "task", "paper_task", "backbone", "paper_backbone", "method", "variant", "label", "family",
                "metric", "device", "path", "operating_point", "exit_unsupported", "split_files"]
INT_COLUMNS = ["num_layers", "seed", "reference_layers"]
BOOL_COLUMNS = ["synthetic"]
FLOAT_COLUMNS = [c for c in RUN_COLUMNS if c not in TEXT_COLUMNS + INT_COLUMNS + BOOL_COLUMNS]
SORT_KEY = ["preset", "task", "backbone", "method", "variant", "seed", "path"]
RUN_ID = ["preset", "task", "backbone", "method", "variant", "seed"]   # one row each (a curve's matched run)


def check_record(record: dict, path, schema_path: str | os.PathLike = RESULT_SCHEMA) -> None:
    """ValueError "<file>: <message>" when a run record does not fit the result schema."""
    problem = schema_problem(record, schema_path)
    if problem:
        raise ValueError(f"{path}: {problem}")


def _float(value) -> float:
    return math.nan if value is None else float(value)


def upper_exit_margin(record: dict) -> float:
    """Did a multi-exit run's exits learn? Its weakest exit of the upper half (layers ceil(L/2)..L,
    3-6 of a 6-layer model) minus the train-majority class's dev score, both on dev before any
    sweep: positive when every one of them beats the majority answer. NaN without exit scores
    (single-exit runs, regression, records written before they existed)."""
    scores, majority = record.get("exit_dev_scores"), record.get("majority_dev_score")
    if not scores or majority is None:
        return math.nan
    return float(min(scores[math.ceil(len(scores) / 2) - 1:]) - majority)


def read_run(path: str | os.PathLike, schema_path: str | os.PathLike = RESULT_SCHEMA) -> dict:
    """One run record as a flat row (RUN_COLUMNS); ValueError "<file>: <message>" if it is not valid."""
    record = read_checked_json(path, schema_path, "run record")
    try:
        return {
            **{k: record[k] for k in ("preset", "task", "paper_task", "backbone", "paper_backbone", "method",
                                      "variant", "label", "family", "metric", "device")},
            "synthetic": bool(record["synthetic"]),
            "num_layers": int(record["num_layers"]),
            "seed": int(record["seed"]),
            "reference_layers": int(record["speedup"]["reference_layers"]),
            "dev_score": _float(record["dev"]["score"]),
            "test_score": _float(record["test"]["score"]),
            "best_on_test_score": _float((record.get("best_on_test") or {}).get("score")),
            "flops_speedup": _float(record["speedup"]["flops"]),
            "elue_speedup": _float(record["speedup"]["elue"]),
            "flops_speedup_vs_own_full": _float(record["speedup"]["flops_vs_own_full"]),
            "elue_speedup_vs_own_full": _float(record["speedup"]["elue_vs_own_full"]),
            "mean_exit_layer": _float(record.get("mean_exit_layer")),
            "train_seconds": _float(record["train_seconds"]),
            "eval_seconds": _float(record["eval_seconds"]),
            "path": Path(path).as_posix(),
            "run": record.get("run", record["variant"]),
            "operating_point": "",
            "exit_unsupported": "",
            # substitute split files (data.split_files) the run read, '' for the ELUE protocol's
            "split_files": substitute_files_text((record.get("data") or {}).get("files")),
            "upper_exit_margin": upper_exit_margin(record),
        }
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reindex(columns=RUN_COLUMNS)
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].fillna("").astype(str)
    for column in INT_COLUMNS:
        frame[column] = frame[column].astype("int64")
    for column in FLOAT_COLUMNS:
        frame[column] = frame[column].astype(float)
    for column in BOOL_COLUMNS:   # a CSV round trip gives the strings "True"/"False"
        frame[column] = frame[column].map(lambda v: v if isinstance(v, bool) else str(v) == "True").astype(bool)
    return frame


MATCHED_FIELDS = ("dev_score", "test_score", "best_on_test_score", "flops_speedup", "elue_speedup",
                  "flops_speedup_vs_own_full", "elue_speedup_vs_own_full", "mean_exit_layer")


def _sweep_key(sweep: dict) -> tuple:
    return (*(sweep[k] for k in RUN_ID), sweep["run"])


def with_matched_point(row: dict, sweep: dict, matched: dict | None, unsupported: str | None = None) -> dict:
    """A dynamic run's row with the matched point (`matched`: the seed's entry of the matched file,
    earlyexit.dynamic.matching) of its `sweep` in the score and speed-up columns (or, where the exit rule
    cannot run the task, those columns empty and the reason in `exit_unsupported`)."""
    row = dict(row)
    if matched is None:
        row.update({k: math.nan for k in MATCHED_FIELDS})
        row["exit_unsupported"] = unsupported or sweep["unsupported"] or "unsupported"
        return row
    point = sweep["points"][matched["index"]]
    row.update({
        "dev_score": float(point["dev"]["score"]), "test_score": float(point["test"]["score"]),
        # the authors' best-on-test concerns training, not an operating point
        "best_on_test_score": math.nan,
        "flops_speedup": float(point["test_speedup"]["flops"]), "elue_speedup": float(point["test_speedup"]["elue"]),
        "flops_speedup_vs_own_full": float(point["test_speedup"]["flops_vs_own_full"]),
        "elue_speedup_vs_own_full": float(point["test_speedup"]["elue_vs_own_full"]),
        "mean_exit_layer": float(point["test_mean_exit_layer"]),
        "operating_point": matched["operating_point"],
    })
    return row


def collect_runs(paths: list[str], schema_path: str | os.PathLike = RESULT_SCHEMA,
                 sweeps: list[str] | None = None, matched: list[str] | None = None) -> pd.DataFrame:
    """One row per run record (columns RUN_COLUMNS), sorted by preset, task, backbone, method, seed, path.

    Every record is validated against the result schema; an invalid or unreadable one, or two records
    for the same preset/task/backbone/method/seed, raise ValueError naming the file. `sweeps`: the
    sweep files (earlyexit/dynamic/sweeps.py) of the dynamic runs, with `matched` the matched files of their
    curves (earlyexit/dynamic/matching.py); each curve's seed then has ONE row, the matched run's, holding
    the matched point (`with_matched_point`); a dynamic run without a sweep file or a matched point
    is an error."""
    rows = [read_run(p, schema_path) for p in paths]
    if sweeps is not None:
        from earlyexit.dynamic.matching import matched_of, read_matched
        from earlyexit.dynamic.sweeps import read_sweep

        by_run = {}
        for path in sweeps:
            sweep = read_sweep(path)
            by_run[_sweep_key(sweep)] = sweep
        chosen = matched_of([read_matched(p) for p in matched or []])
        kept = []
        for row in rows:
            if row["family"] != "dynamic":
                kept.append(row)
                continue
            key = tuple(row[k] for k in RUN_ID)
            if (*key, row["run"]) not in by_run:
                raise ValueError(f"{row['path']}: dynamic run without a sweep file among the inputs")
            entry = chosen.get(key[1:])
            if entry is None:
                raise ValueError(f"{row['path']}: dynamic run without a matched-point file among the inputs")
            point = entry["matched"]
            if point is None and row["run"] == entry["runs"][0]:     # unsupported: the curve's first run says so
                kept.append(with_matched_point(row, by_run[(*key, row["run"])], None, entry["unsupported"]))
            elif point is not None and point["run"] == row["run"]:
                kept.append(with_matched_point(row, by_run[(*key, row["run"])], point))
        rows = kept
    frame = _typed(pd.DataFrame.from_records(rows, columns=RUN_COLUMNS))
    frame = frame.sort_values(SORT_KEY, kind="mergesort").reset_index(drop=True)
    twins = frame[frame.duplicated(RUN_ID, keep=False)]
    if len(twins):
        first = twins.iloc[0]
        same = twins[(twins[RUN_ID] == first[RUN_ID]).all(axis=1)]["path"].tolist()
        raise ValueError(f"{same[1]}: same run ({', '.join(f'{k}={first[k]}' for k in RUN_ID)}) as {same[0]}")
    return frame


def write_runs_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the runs table (RUN_COLUMNS, in that order) atomically."""
    missing = [c for c in RUN_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: runs table lacks column(s) {', '.join(missing)}")
    with atomic_path(path) as tmp:
        df[RUN_COLUMNS].to_csv(tmp, index=False, lineterminator="\n")


def read_runs_csv(path: str | os.PathLike) -> pd.DataFrame:
    """The runs table written by write_runs_csv, with its column types; ValueError naming the file if
    it lacks a column."""
    try:
        frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False,
                            na_values={c: ["", "nan", "NaN"] for c in FLOAT_COLUMNS})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{path}: cannot read runs table ({str(error).strip().splitlines()[0]})") from None
    missing = [c for c in RUN_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: line 1: runs table lacks column(s) {', '.join(missing)}")
    try:
        return _typed(frame)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None


# --- every sweep point of the dynamic runs: dynamic_curves.csv -----------------------------------------

CURVE_COLUMNS = [
    "preset", "task", "paper_task", "synthetic", "backbone", "paper_backbone", "method", "variant", "label", "seed",
    "metric", "setting", "train_setting", "matched", "target_speedup", "target_source", "dev_score", "test_score",
    "reference_layers", "dev_flops_speedup", "dev_elue_speedup", "flops_speedup", "elue_speedup", "flops_speedup_vs_own_full", "elue_speedup_vs_own_full",
    "layer_speedup", "layer_speedup_vs_own_full", "mean_exit_layer", "exit_histogram", "path",
]


def curves_frame(sweeps: list[str], matched: list[str]) -> pd.DataFrame:
    """One row per sweep point (test speed-ups and scores; `dev_flops_speedup` is what matching reads;
    `exit_histogram`: test instances per exit layer 1..L, ';'-joined). The points of every run of a
    variant (a training-time sweep's runs too) share method and variant: one curve, `setting` naming
    the training-time setting first ("alpha=0.02,policy_threshold=0.5"), `train_setting` alone.
    `matched`: the curves' matched files (earlyexit/dynamic/matching.py). Unsupported runs have no row."""
    from earlyexit.dynamic.matching import matched_of, operating_point, read_matched
    from earlyexit.methods.base import setting_label
    from earlyexit.dynamic.sweeps import read_sweep

    files = [read_matched(p) for p in matched]
    chosen = matched_of(files)
    targets = {(m["task"], m["backbone"], m["method"], m["variant"]): m["target"] for m in files}
    rows = []
    for path in sweeps:
        sweep = read_sweep(path)
        curve = (sweep["task"], sweep["backbone"], sweep["method"], sweep["variant"])
        if curve not in targets:
            raise ValueError(f"{path}: no matched-point file for its curve among the inputs")
        point_of = (chosen.get((*curve, sweep["seed"])) or {}).get("matched") or {}
        index_matched = point_of.get("index") if point_of.get("run") == sweep["run"] else None
        for index, point in enumerate(sweep["points"]):
            rows.append({
                **{k: sweep[k] for k in ("preset", "task", "paper_task", "synthetic", "backbone", "paper_backbone",
                                          "method", "variant", "label", "seed", "metric", "reference_layers")},
                "setting": operating_point(sweep["train_setting"], point["setting"]),
                "train_setting": setting_label(sweep["train_setting"]), "matched": index == index_matched,
                "target_speedup": targets[curve]["speedup"], "target_source": targets[curve]["source"],
                "dev_score": point["dev"]["score"], "test_score": point["test"]["score"],
                "dev_flops_speedup": point["dev_speedup"]["flops"],
                "dev_elue_speedup": point["dev_speedup"]["elue"],
                "flops_speedup": point["test_speedup"]["flops"], "elue_speedup": point["test_speedup"]["elue"],
                "flops_speedup_vs_own_full": point["test_speedup"]["flops_vs_own_full"],
                "elue_speedup_vs_own_full": point["test_speedup"]["elue_vs_own_full"],
                "layer_speedup": point["test_layer_speedup"]["vs_reference"],
                "layer_speedup_vs_own_full": point["test_layer_speedup"]["vs_own_full"],
                "mean_exit_layer": point["test_mean_exit_layer"],
                "exit_histogram": ";".join(map(str, point["test_exit_histogram"])),
                "path": Path(path).as_posix(),
            })
    frame = pd.DataFrame.from_records(rows, columns=CURVE_COLUMNS)
    return frame.sort_values(["preset", "task", "backbone", "method", "variant", "seed"], kind="mergesort").reset_index(drop=True)


def write_curves_csv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame[CURVE_COLUMNS].to_csv(tmp, index=False, lineterminator="\n")


def read_curves_csv(path: str | os.PathLike) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype={"setting": str, "train_setting": str, "exit_histogram": str,
                                         "target_source": str})
    except (OSError, pd.errors.ParserError) as error:
        raise ValueError(f"{path}: cannot read curves table ({str(error).strip().splitlines()[0]})") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    missing = [c for c in CURVE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: line 1: curves table lacks column(s) {', '.join(missing)}")
    frame["train_setting"] = frame["train_setting"].fillna("")     # "" : a run without a training-time setting
    frame["synthetic"] = frame["synthetic"].map(lambda v: v if isinstance(v, bool) else str(v) == "True").astype(bool)
    frame["matched"] = frame["matched"].map(lambda v: v if isinstance(v, bool) else str(v) == "True").astype(bool)
    return frame
