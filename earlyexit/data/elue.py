"""Readers for the ELUE TSV files (the layout of the HashEE repo's ELUE_data and the ELUE benchmark).

Layouts, chosen from the header row (spec section 7):
- single sentence:  `sentence label`                       unlabelled test.tsv: `index sentence`
- sentence pair:    `premise hypothesis label` or `sentence1 sentence2 label` (STS-B: float label)
                    unlabelled test.tsv: `index premise hypothesis` / `index sentence1 sentence2`
- MRPC (GLUE):      `Quality #1 ID #2 ID #1 String #2 String`, label = column 0, texts = columns 3, 4;
                    test_full has `label` and test.tsv `index` in column 0.
Some files start with a UTF-8 BOM and some use CRLF line ends; both are removed.

CSV quoting. Some ELUE files were written by a CSV writer with minimal quoting: a field that holds a
quote character is wrapped in quotes and its inner quotes are doubled; a field without one is left
bare. Which files, measured on the ELUE files (../shared/data/README.md):
- STS-B: every split; train/dev/test.tsv carry one level, test_full.tsv two (it was written again).
- MRPC: test_full.tsv only (one level). train/dev/test.tsv are GLUE's raw files, where `"` is real,
  space-separated text (`" I 'm delighted ... , " he said .`), so they are never decoded.
- SST-2, SNLI: no quoting found; their test_full.tsv is decoded like every *_full.tsv (a no-op there).
In the files that were CSV-written we decode level after level, but only while the decoded text
still holds a quote: a minimal-quoting writer never wraps a text without one. That rule is what
keeps a sentence that really is in quotes (STS-B `"The petitioners are entitled ..."`, stored with
three quotes at each end; MRPC test_full `" I am advised ... . "`, likewise) in its quotes, while
`"A dog in a ""superman"" shirt ..."` becomes `A dog in a "superman" shirt ...`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from earlyexit.data.examples import DataFormatError, Example, iter_tsv_lines, parse_label
from earlyexit.data.tasks import TaskSpec

# The suite evaluates on test_full.tsv (labelled), as HashEE does; test.tsv is the unlabelled
# benchmark-submission twin of it, in the same order.
ELUE_SPLIT_FILES = {"train": "train.tsv", "dev": "dev.tsv", "test": "test_full.tsv"}

_SINGLE_TEXT_COLUMNS = {("sentence",), ("text",)}
_PAIR_TEXT_COLUMNS = {("premise", "hypothesis"), ("sentence1", "sentence2"), ("s1", "s2")}
_MRPC_TAIL = ("#1 id", "#2 id", "#1 string", "#2 string")

# A field is CSV-quoted when it is wrapped in quotes and every inner quote is doubled. Requiring
# the doubling keeps a sentence such as `"Yes" and "no"` (not CSV quoting) unchanged.
_CSV_QUOTED = re.compile(r'"((?:[^"]|"")*)"', re.DOTALL)
# Tasks whose every split was written by a CSV writer (see the module docstring).
_CSV_WRITTEN_TASKS = frozenset({"STS-B"})


@dataclass(frozen=True)
class _Layout:
    num_columns: int
    text_columns: tuple[int, ...]
    label_column: int | None


def _layout(path, header: str, task: TaskSpec) -> _Layout:
    columns = tuple(c.strip().lower() for c in header.split("\t"))
    shown = header.replace("\t", " | ")
    if len(columns) == 5 and columns[1:] == _MRPC_TAIL:
        if not task.pair:
            raise DataFormatError(path, 1, f"MRPC-style header '{shown}' for single-sentence task {task.name}")
        if columns[0] not in ("quality", "label", "index"):
            raise DataFormatError(path, 1, f"MRPC-style header '{shown}': column 0 must be Quality, label or index")
        return _Layout(5, (3, 4), None if columns[0] == "index" else 0)
    if columns[0] == "index":
        texts, label_column = columns[1:], None
    elif columns[-1] == "label":
        texts, label_column = columns[:-1], len(columns) - 1
    else:
        raise DataFormatError(path, 1, f"header '{shown}' has no 'label' column (nor a leading 'index' column)")
    known = _PAIR_TEXT_COLUMNS if task.pair else _SINGLE_TEXT_COLUMNS
    if texts not in known:
        expected = " or ".join(" | ".join(c) for c in sorted(known))
        kind = "sentence-pair" if task.pair else "single-sentence"
        raise DataFormatError(path, 1, f"header '{shown}' does not fit {kind} task {task.name} (text columns: {expected})")
    offset = 1 if label_column is None else 0
    return _Layout(len(columns), tuple(range(offset, offset + len(texts))), label_column)


def _unquote(text: str) -> str:
    """Undo minimal CSV quoting, as many levels as were applied (see the module docstring)."""
    while (match := _CSV_QUOTED.fullmatch(text)) is not None:
        inner = match.group(1).replace('""', '"')
        if '"' not in inner:    # a minimal-quoting writer would not have quoted this: real quotes
            break
        text = inner
    return text


def csv_written(path: str | os.PathLike, task: TaskSpec) -> bool:
    """Whether `path` (a split file of `task`) was written by a CSV writer and is decoded."""
    return task.name in _CSV_WRITTEN_TASKS or Path(path).name.endswith("_full.tsv")


def read_elue_split(path: str | os.PathLike, task: TaskSpec, labelled: bool = True, *,
                    unquote: bool | None = None) -> list[Example]:
    """Read one ELUE split file into Examples.

    labelled=True requires a label column and validates every label; labelled=False reads the texts
    of either layout (e.g. the unlabelled test.tsv) and returns label None.

    unquote: decode CSV quoting in text fields (None = where `csv_written` says the file was written
    by a CSV writer: every STS-B split and every `*_full.tsv`). After decoding, STS-B's test.tsv and
    test_full.tsv hold the same texts, as do MRPC's. The authors' pair loaders kept the literal
    quotes (their SST-2 and IMDb loaders unquote); we decode so that a text reads the same in
    every split. Other files are left alone: there a quote is real text.
    """
    if unquote is None:
        unquote = csv_written(path, task)
    lines = iter_tsv_lines(path)
    _, header = next(lines)
    layout = _layout(path, header, task)
    if labelled and layout.label_column is None:
        raise DataFormatError(path, 1, "no label column (an unlabelled submission file?): "
                                       "read test_full.tsv, or pass labelled=False")
    examples = []
    for number, line in lines:
        fields = line.split("\t")
        if len(fields) != layout.num_columns:
            raise DataFormatError(path, number, f"expected {layout.num_columns} tab-separated columns, found {len(fields)}")
        texts = [fields[i].strip() for i in layout.text_columns]
        if unquote:
            texts = [_unquote(t) for t in texts]
        label = parse_label(path, number, fields[layout.label_column], task) if labelled else None
        examples.append(Example(texts[0], texts[1] if task.pair else None, label))
    if not examples:
        raise DataFormatError(path, None, "header but no data rows")
    return examples


class MissingSplitError(FileNotFoundError):
    """A split file of a task is not where the config says; the message is one line naming it."""


def load_elue_task(data_dir: str | os.PathLike, task: TaskSpec, files: dict | None = None) -> dict[str, list[Example]]:
    """Read train/dev/test of `task` from `<data_dir>/<task.name>/`: split -> file name `files`
    (default ELUE_SPLIT_FILES: test = test_full.tsv)."""
    folder = Path(data_dir) / task.name
    paths = {split: folder / name for split, name in (files or ELUE_SPLIT_FILES).items()}
    for split, path in paths.items():
        if path.is_file():
            continue
        if not folder.is_dir():
            raise MissingSplitError(f"{path}: no such file; the folder {folder} does not exist "
                                    f"(data_dir should hold <task>/{{train,dev,test_full}}.tsv)")
        present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise MissingSplitError(f"{path}: no such file; the {split} split of {task.name} is absent from "
                                f"{folder} (it has: {present}); use data.sources: {{{task.name}: hub}} for this task, "
                                f"or name another file in data.split_files.{task.name}")
    return {split: read_elue_split(path, task) for split, path in paths.items()}
