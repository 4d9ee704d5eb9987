"""The one data file of published numbers: it parses, holds the paper's numbers, and bad files fail clearly."""

import math
import re

import pandas as pd
import pytest

from analysis.published import PUBLISHED_COLUMNS, load_published
from tests.conftest import REPO

PUBLISHED = REPO / "data" / "published" / "hashee_published.csv"
PAPER_MD = REPO.parent / "shared" / "docs" / "paper.md"


@pytest.fixture(scope="module")
def published():
    return load_published(PUBLISHED)


def one(frame, **key):
    rows = frame
    for column, value in key.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, f"{key}: {len(rows)} rows"
    return rows.iloc[0]


def test_file_parses_with_the_documented_columns_and_types(published):
    assert list(published.columns) == PUBLISHED_COLUMNS
    assert published["value"].dtype == float and published["speedup"].dtype == float
    # 2 backbones x 5 hashes x 3 tasks; 12 full ELUE rows x 7 + 3 rows x 5; 5 x 3 + 3 x 3; 4 x 15 + 3 x 3
    assert published.groupby("table").size().to_dict() == {
        "hash_functions": 30, "elue_main": 99, "difficulty": 24, "summarization": 69}
    assert not published.duplicated(["table", "row", "backbone", "task", "metric"]).any()


def test_spot_checks(published):
    freq = one(published, table="hash_functions", row="frequency", backbone="ElasticBERT-6L", task="SST-2")
    assert (freq["value"], freq["std"], freq["speedup"]) == (85.5, 0.41, 4.9)
    snli = one(published, table="hash_functions", row="clustered", backbone="ElasticBERT-12L", task="SNLI")
    assert snli.value == 90.1 and math.isnan(snli["std"]) and snli.speedup == 1.5
    hashee = one(published, table="elue_main", row="HashEE", task="SST-2")
    assert (hashee.value, hashee.speedup) == (85.5, 4.8)
    elue = one(published, table="elue_main", row="BERT-3L", task="ELUE")
    assert elue.value == -3.70 and elue.metric == "elue_score" and math.isnan(elue.speedup)
    assert published[(published["row"] == "DeeBERT") & (published["task"].isin(["STS-B", "ELUE"]))].empty
    majority = one(published, table="difficulty", row="Majority", backbone="sentence", metric="precision")
    assert majority.value == 60.5
    assert published[(published["table"] == "difficulty") & (published["backbone"] == "token")
                     & (published["row"] == "Majority")].empty
    assert one(published, table="difficulty", row="BERT", backbone="token", metric="f1").value == 53.1
    assert one(published, table="summarization", row="HashEE w/ BART", task="CNN-DM", metric="rouge2").value == 18.41
    assert one(published, table="summarization", row="HashEE w/ CPT", task="all", metric="enc_speedup").value == 2.3


def test_table_filter(published):
    hashes = load_published(PUBLISHED, table="hash_functions")
    assert len(hashes) == 30 and set(hashes["row"]) == {"rand-incons", "rand-cons", "frequency", "mi", "clustered"}
    assert set(hashes["backbone"]) == {"ElasticBERT-6L", "ElasticBERT-12L"}
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        load_published(PUBLISHED, table="nope")


# --------------------------------------------------------------- every number against paper.md

HASH_KEYS = {"Rand-incons": "rand-incons", "Rand-cons": "rand-cons", "Frequency": "frequency", "MI": "mi",
             "Clustered": "clustered"}


def _paper_table(text, title):
    """(header, rows) of the markdown table following the line that contains `title`."""
    lines = text[text.index(title):].splitlines()[1:]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return block[0], block[2:]


def _expected_cells(text):
    """{(table, row, backbone, task, metric): (value, std, speedup)} from paper.md, '–' cells left out."""
    out = {}
    header, rows = _paper_table(text, "Published Table (effect of hash functions")
    group = None
    for cells in rows:
        if cells[0].startswith("*"):
            group = cells[0].strip("*")
            continue
        for task, cell in zip(header[2:], cells[2:]):
            value, _, std = cell.partition(" (±")
            out[("hash_functions", HASH_KEYS[cells[0]], group, task, "score")] = (
                float(value), float(std.rstrip(")")) if std else math.nan, float(cells[1].rstrip("×")))
    header, rows = _paper_table(text, "Published Table (ELUE test sets")
    for cells in rows:
        for task, cell in zip(header[1:], cells[1:]):
            if cell == "–":
                continue
            model = cells[0].strip("*")
            if task == "ELUE":
                out[("elue_main", model, "", task, "elue_score")] = (float(cell), math.nan, math.nan)
            else:
                value, speedup = re.fullmatch(r"(\S+) \((\S+)×\)", cell).groups()
                out[("elue_main", model, "", task, "score")] = (float(value), math.nan, float(speedup))
    header, rows = _paper_table(text, "Published Table (model-defined difficulty")
    level = None
    for cells in rows:
        if cells[0].startswith("*"):
            level = cells[0].strip("*").split("-")[0].lower()
            continue
        for metric, cell in zip(("precision", "recall", "f1"), cells[1:]):
            if cell != "–":
                out[("difficulty", cells[0], level, "*", metric)] = (float(cell), math.nan, math.nan)
    header, rows = _paper_table(text, "Published Table (summarization")
    for cells in rows:
        for metric, cell in zip(("enc_speedup", "dec_speedup", "total_speedup"), cells[1:4]):
            out[("summarization", cells[0], "", "all", metric)] = (float(cell.rstrip("×")), math.nan, math.nan)
        for task, cell in zip(header[4:], cells[4:]):
            if cell != "–":
                for metric, value in zip(("rouge1", "rouge2", "rougeL"), cell.split("/")):
                    out[("summarization", cells[0], "", task.replace("/", "-"), metric)] = (float(value), math.nan, math.nan)
    return out


@pytest.mark.skipif(not PAPER_MD.exists(), reason="../shared/docs/paper.md not present")
def test_every_published_number_matches_paper_md(published):
    expected = _expected_cells(PAPER_MD.read_text(encoding="utf-8"))
    got = {}
    for r in published.itertuples(index=False):
        task = "*" if r.table == "difficulty" else r.task
        got[(r.table, r.row, r.backbone, task, r.metric)] = (r.value, r.std, r.speedup)
    assert set(got) == set(expected)
    for key, numbers in expected.items():
        assert got[key] == pytest.approx(numbers, nan_ok=True), key


# --------------------------------------------------------------- malformed files

GOOD_HEADER = ",".join(PUBLISHED_COLUMNS)


def write(tmp_path, *lines):
    path = tmp_path / "published.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("lines, message", [
    (["table,row,backbone,task,metric,value,speedup,note"], r"line 1: expected columns table,row,"),
    ([GOOD_HEADER, "hash_functions,mi,ElasticBERT-6L,SST-2,score,85.5,0.49,3.3,ok",
      "hash_functions,mi,ElasticBERT-6L,SNLI,score,ninety,,3.3,bad"], r"line 3: column 'value': 'ninety' is not a number"),
    ([GOOD_HEADER, "hash_functions,mi,ElasticBERT-6L,SST-2,score,85.5,0.49,fast,bad"], r"line 2: column 'speedup'"),
    ([GOOD_HEADER, "hash_functions,mi,ElasticBERT-6L,SST-2,score,,0.49,3.3,bad"], r"line 2: column 'value' is empty"),
    ([GOOD_HEADER, "hash_functions,mi,ElasticBERT-6L,SST-2,score,85.5"], r"line 2: expected 9 fields, got 6"),
    ([GOOD_HEADER, "hash_fns,mi,ElasticBERT-6L,SST-2,score,85.5,,,"], r"line 2: column 'table': unknown table"),
    ([GOOD_HEADER, "hash_functions,,ElasticBERT-6L,SST-2,score,85.5,,,"], r"line 2: column 'row' is empty"),
    ([GOOD_HEADER, "elue_main,HashEE,,SST-2,score,85.5,,4.8,", "elue_main,HashEE,,SST-2,score,85.6,,4.8,"],
     r"line 3: duplicates line 2"),
])
def test_malformed_file_names_the_file_and_line(tmp_path, lines, message):
    path = write(tmp_path, *lines)
    with pytest.raises(ValueError) as error:
        load_published(path)
    text = str(error.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    assert re.search(message, text), text


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "absent.csv"))):
        load_published(tmp_path / "absent.csv")


def test_small_valid_file_types(tmp_path):
    path = write(tmp_path, GOOD_HEADER, 'hash_functions,mi,ElasticBERT-6L,SNLI,score,90.0,,3.3,"dev, no std"')
    frame = load_published(path)
    assert frame.loc[0, "note"] == "dev, no std" and math.isnan(frame.loc[0, "std"]) and frame.loc[0, "value"] == 90.0
    assert isinstance(frame, pd.DataFrame) and len(frame) == 1
