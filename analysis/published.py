"""The published numbers of HashEE (Sun et al., 2022), read from the one data file that holds them.

data/published/hashee_published.csv is long: one published number per line, columns
table,row,backbone,task,metric,value,std,speedup,note (see data/published/README.md).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pandas as pd

PUBLISHED_COLUMNS = ["table", "row", "backbone", "task", "metric", "value", "std", "speedup", "note"]
TABLES = ("hash_functions", "elue_main", "difficulty", "summarization")
TEXT_COLUMNS = ("table", "row", "backbone", "task", "metric", "note")
REQUIRED_TEXT = ("table", "row", "task", "metric")
OPTIONAL_NUMBERS = ("std", "speedup")
KEY = ("table", "row", "backbone", "task", "metric")

# The file as captions name it (relative to the repository root), and its default location.
PUBLISHED_NAME = "data/published/hashee_published.csv"
PUBLISHED_CSV = Path(__file__).resolve().parents[1] / PUBLISHED_NAME


def _number(text: str, where: str, column: str, required: bool) -> float:
    if text == "":
        if required:
            raise ValueError(f"{where}: column '{column}' is empty")
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: column '{column}': {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: column '{column}': {text!r} is not a finite number")
    return value


def load_published(path: str | os.PathLike = PUBLISHED_CSV, table: str | None = None) -> pd.DataFrame:
    """The published numbers as a DataFrame with columns PUBLISHED_COLUMNS (value/std/speedup float,
    NaN where the paper gives none; text columns str, "" where empty), in file order.

    `table` keeps one table's rows. Any malformed line raises ValueError "<file>: line N: ..."."""
    path = Path(path)
    if table is not None and table not in TABLES:
        raise ValueError(f"{path}: unknown table {table!r} (known: {', '.join(TABLES)})")
    try:
        handle = open(path, encoding="utf-8", newline="")
    except OSError as error:
        raise ValueError(f"{path}: cannot read published numbers ({error.strerror})") from None
    records, seen = [], {}
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != PUBLISHED_COLUMNS:
            raise ValueError(f"{path}: line 1: expected columns {','.join(PUBLISHED_COLUMNS)}, "
                             f"got {','.join(header or [])}")
        for fields in reader:
            where = f"{path}: line {reader.line_num}"
            if not fields:
                continue
            if len(fields) != len(PUBLISHED_COLUMNS):
                raise ValueError(f"{where}: expected {len(PUBLISHED_COLUMNS)} fields, got {len(fields)}")
            rec = dict(zip(PUBLISHED_COLUMNS, (f.strip() for f in fields)))
            for column in REQUIRED_TEXT:
                if not rec[column]:
                    raise ValueError(f"{where}: column '{column}' is empty")
            if rec["table"] not in TABLES:
                raise ValueError(f"{where}: column 'table': unknown table {rec['table']!r} (known: {', '.join(TABLES)})")
            rec["value"] = _number(rec["value"], where, "value", required=True)
            for column in OPTIONAL_NUMBERS:
                rec[column] = _number(rec[column], where, column, required=False)
            key = tuple(rec[k] for k in KEY)
            if key in seen:
                raise ValueError(f"{where}: duplicates line {seen[key]} ({', '.join(f'{k}={v}' for k, v in zip(KEY, key))})")
            seen[key] = reader.line_num
            records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=PUBLISHED_COLUMNS)
    for column in ("value", "std", "speedup"):
        frame[column] = frame[column].astype(float)
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].astype(str)
    if table is not None:
        frame = frame[frame["table"] == table].reset_index(drop=True)
    return frame


def elasticbert_curve(published: pd.DataFrame) -> dict:
    """The published ElasticBERT-nL points, per paper task: {task: [(n, score, speed-up)]}, from the
    rows named "ElasticBERT-<n>L" of the main table (the HashEE paper prints only n = 3; the ELUE
    paper's 12-point curve is not among the numbers this suite holds)."""
    import re

    rows = published[(published["table"] == "elue_main") & (published["metric"] == "score")]
    curve: dict = {}
    for rec in rows.itertuples(index=False):
        match = re.fullmatch(r"ElasticBERT-(\d+)L", rec.row)
        if match and math.isfinite(rec.speedup):
            curve.setdefault(rec.task, []).append((int(match.group(1)), float(rec.value), float(rec.speedup)))
    return {task: sorted(points) for task, points in curve.items()}
