"""One labelled instance (`Example`) and the suite's normalized split format.

Normalized split = UTF-8 TSV, header `text_a<TAB>text_b<TAB>label`, one example per line; text_b is
empty for single-sentence tasks; label is an int (classification) or a float (regression). Every
data source (ELUE files, the hub, the synthetic generator) is converted to it once, so tokenisation
reads one format only.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from earlyexit.data.tasks import REGRESSION_LABEL_RANGE, TaskSpec
from earlyexit.plumbing.files import atomic_path

HEADER = ("text_a", "text_b", "label")
_BOM = b"\xef\xbb\xbf"
CR_ONLY = "CR-only line ends (old Mac format); convert them to LF, e.g. tr '\\r' '\\n'"
# The longest line a task file may hold: a CNN/DM article is a few dozen kB, so 1 MiB is far above any
# real text; a longer line is a broken file (a missing line end) and would make tokenising crawl.
MAX_LINE_BYTES = 1 << 20
# Tabs and line breaks would break the TSV row structure; they carry no meaning in these texts.
_ROW_BREAKERS = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


class Example(NamedTuple):
    text_a: str
    text_b: str | None
    label: int | float | None


class DataFormatError(ValueError):
    """A malformed data file; the message is always `<file>:<line>: <what>` (or `<file>: <what>`
    for whole-file problems), so a user can jump straight to the offending line."""

    def __init__(self, path: str | os.PathLike, line: int | None, what: str):
        self.path, self.line, self.what = str(path), line, what
        super().__init__(f"{self.path}:{line}: {what}" if line else f"{self.path}: {what}")


def iter_tsv_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line text) of a UTF-8 text file.

    Strips a UTF-8 BOM at the start and a trailing CR (CRLF files), skips blank lines, and raises
    `DataFormatError` for an empty file, a file with CR-only line ends (old Mac) or a line that is
    not valid UTF-8. Splits on "\\n" only: str.splitlines() would also split on characters such as
    U+2028 that can occur inside a text.
    """
    raw = Path(path).read_bytes()
    if raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    if not raw.strip():
        raise DataFormatError(path, None, "empty file")
    if b"\r" in raw and b"\n" not in raw:     # else the whole file reads as one (header) line
        raise DataFormatError(path, None, CR_ONLY)
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        if len(chunk) > MAX_LINE_BYTES:
            raise DataFormatError(path, number, f"a line of {len(chunk):,} bytes, over the {MAX_LINE_BYTES:,} any text "
                                                "of a task can have (a missing line end?)")
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataFormatError(path, number, f"not valid UTF-8 (byte {error.start} of the line)") from None
        line = line.rstrip("\r")
        if line.strip():
            yield number, line


def _clean(text: str) -> str:
    return text.translate(_ROW_BREAKERS)


def _format_label(label) -> str:
    if label is None:
        raise ValueError("the normalized format holds labelled splits only; got an example without a label")
    if isinstance(label, bool) or not isinstance(label, numbers.Real):
        raise ValueError(f"label {label!r} is not a class index or a score")
    if isinstance(label, numbers.Integral):     # also numpy integers
        return str(int(label))
    return repr(float(label))                   # repr round-trips a float exactly


def write_examples(path: str | os.PathLike, examples: Iterable[Example]) -> None:
    """Write `examples` atomically in the normalized format (tabs and line breaks in texts become spaces)."""
    lines = ["\t".join(HEADER)]
    for example in examples:
        text_b = "" if example.text_b is None else _clean(example.text_b)
        lines.append(f"{_clean(example.text_a)}\t{text_b}\t{_format_label(example.label)}")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def parse_label(path, line: int, text: str, task: TaskSpec) -> int | float:
    """Parse and range-check one label field; shared by the normalized and the ELUE readers."""
    text = text.strip()
    if task.is_regression:
        try:
            value = float(text)
        except ValueError:
            raise DataFormatError(path, line, f"label {text!r} is not a number ({task.name} is a regression task)") from None
        low, high = REGRESSION_LABEL_RANGE
        if not (math.isfinite(value) and low <= value <= high):
            raise DataFormatError(path, line, f"label {value:g} is outside [{low:g}, {high:g}] for {task.name}")
        return value
    try:
        value = int(text)
    except ValueError:
        raise DataFormatError(path, line, f"label {text!r} is not an integer class index") from None
    if not 0 <= value < task.num_labels:
        raise DataFormatError(path, line, f"label {value} is outside 0..{task.num_labels - 1} for {task.name}")
    return value


def read_examples(path: str | os.PathLike, task: TaskSpec) -> list[Example]:
    """Read and validate a normalized split written by `write_examples`."""
    lines = iter_tsv_lines(path)
    number, header = next(lines)
    if tuple(header.split("\t")) != HEADER:
        raise DataFormatError(path, number, f"header is {header!r}, expected {chr(9).join(HEADER)!r}")
    examples = []
    for number, line in lines:
        fields = line.split("\t")
        if len(fields) != len(HEADER):
            raise DataFormatError(path, number, f"expected {len(HEADER)} tab-separated columns, found {len(fields)}")
        text_a, text_b, label = fields
        if text_b and not task.pair:
            raise DataFormatError(path, number, f"text_b is set but {task.name} is a single-sentence task")
        examples.append(Example(text_a, text_b if task.pair else None, parse_label(path, number, label, task)))
    if not examples:
        raise DataFormatError(path, None, "no examples after the header")
    return examples
