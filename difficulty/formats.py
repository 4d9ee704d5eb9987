"""The difficulty datasets on disk.

- pairs, human-defined:  header `sentence1 sentence2 label`, label 0 (simple) / 1 (difficult)
- pairs, model-defined:  header `sentence1 sentence2 label`, label a list literal `[1, 0, ...]` with
                         one bit per layer (1 = that layer's internal classifier was right); this is
                         the format of the released files
- tokens, model-defined: header `tokens label`; tokens are the annotator's word pieces joined by
                         spaces, label holds one bit string per piece (`1101 0011 ...`, bit l = layer l+1)

Files are plain tab-separated UTF-8 lines ending in LF or CRLF, without quoting (the released files
contain `"` inside sentences). Every reader error is a DataFormatError whose message starts with
`<file>:<line>:` (`<file>:` for a whole-file problem such as CR-only line ends).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PAIR_HEADER = ("sentence1", "sentence2", "label")
TOKEN_HEADER = ("tokens", "label")
_BOM = b"\xef\xbb\xbf"
CR_ONLY = "CR-only line ends (old Mac format); convert them to LF, e.g. tr '\\r' '\\n'"


class DataFormatError(ValueError):
    """Bad input file; the message starts with `<file>:<line>:` so editors can jump to it
    (`<file>:` alone for a whole-file problem, line None)."""

    def __init__(self, path, line: int | None, message: str):
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass
class PairSet:
    text_a: list[str]
    text_b: list[str]
    labels: np.ndarray  # (N,) for human-defined, (N, L) for model-defined

    def __len__(self) -> int:
        return len(self.text_a)

    def subset(self, index) -> "PairSet":
        index = np.asarray(index, dtype=int)
        return PairSet([self.text_a[i] for i in index], [self.text_b[i] for i in index], self.labels[index])


@dataclass
class TokenSet:
    tokens: list[list[str]]
    labels: list[np.ndarray]  # one (n_tokens, L) array per instance

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, index) -> "TokenSet":
        return TokenSet([self.tokens[i] for i in index], [self.labels[i] for i in index])

    @property
    def n_layers(self) -> int:
        return self.labels[0].shape[1] if self.labels else 0


def _lines(path):
    """(line number, fields) of every line, split on LF only. BOM and CRLF tolerated (ELUE files);
    CR-only line ends (old Mac) and invalid UTF-8 are refused with a message saying so."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:      # binary lines end at LF only, so a stray CR stays inside its line
        for number, raw in enumerate(f, start=1):
            if number == 1:
                if b"\r" in raw and not raw.endswith(b"\n"):   # no LF in the whole file
                    raise DataFormatError(path, None, CR_ONLY)
                raw = raw.removeprefix(_BOM)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataFormatError(path, number, f"not valid UTF-8 (byte {error.start} of the line)") from None
            yield number, line.rstrip("\r\n").split("\t")


def _check_header(path, number, fields, expected):
    if tuple(f.strip().lower() for f in fields) != expected:
        raise DataFormatError(path, number, f"header must be {' '.join(expected)} (tab-separated), got {fields!r}")


def _bit(path, number, text: str) -> int:
    if text not in ("0", "1"):
        raise DataFormatError(path, number, f"label entry {text!r} is not 0 or 1")
    return int(text)


def parse_bit_list(path, number, text: str, n_layers: int | None) -> list[int]:
    """`[1, 0, 1]` -> [1, 0, 1], checking brackets, 0/1 entries and the length."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise DataFormatError(path, number, f"label must be a list like [1, 0, ...], got {text!r}")
    inner = text[1:-1].strip()
    bits = [_bit(path, number, item.strip()) for item in inner.split(",")] if inner else []
    if n_layers is not None and len(bits) != n_layers:
        raise DataFormatError(path, number, f"label list has {len(bits)} entries, expected {n_layers}")
    if not bits:
        raise DataFormatError(path, number, "label list is empty")
    return bits


def read_pairs(path, *, multilabel: bool, n_layers: int | None = None) -> PairSet:
    """Read a human-defined (multilabel=False) or model-defined (multilabel=True) pair file.

    With n_layers None the first row fixes the number of layers and every row must match it.
    """
    text_a, text_b, labels = [], [], []
    for number, fields in _lines(path):
        if number == 1:
            _check_header(path, number, fields, PAIR_HEADER)
            continue
        if fields == [""]:
            continue  # a trailing empty line
        if len(fields) != 3:
            raise DataFormatError(path, number, f"expected 3 tab-separated columns (sentence1, sentence2, label), got {len(fields)}")
        a, b, label = fields
        if not a.strip():
            raise DataFormatError(path, number, "sentence1 is empty")
        if multilabel:
            bits = parse_bit_list(path, number, label, n_layers)
            n_layers = len(bits)
            labels.append(bits)
        else:
            labels.append(_bit(path, number, label.strip()))
        text_a.append(a)
        text_b.append(b)
    if not text_a:
        raise DataFormatError(path, 1, "no data rows")
    return PairSet(text_a, text_b, np.asarray(labels, dtype=np.int8))


def read_tokens(path, n_layers: int | None = None) -> TokenSet:
    tokens, labels = [], []
    for number, fields in _lines(path):
        if number == 1:
            _check_header(path, number, fields, TOKEN_HEADER)
            continue
        if fields == [""]:
            continue
        if len(fields) != 2:
            raise DataFormatError(path, number, f"expected 2 tab-separated columns (tokens, label), got {len(fields)}")
        pieces, groups = fields[0].split(), fields[1].split()
        if not pieces:
            raise DataFormatError(path, number, "no tokens")
        if len(groups) != len(pieces):
            raise DataFormatError(path, number, f"{len(pieces)} tokens but {len(groups)} label groups")
        n_layers = n_layers or len(groups[0])
        rows = []
        for group in groups:
            if len(group) != n_layers:
                raise DataFormatError(path, number, f"label group {group!r} has {len(group)} bits, expected {n_layers}")
            rows.append([_bit(path, number, c) for c in group])
        tokens.append(pieces)
        labels.append(np.asarray(rows, dtype=np.int8))
    if not tokens:
        raise DataFormatError(path, 1, "no data rows")
    return TokenSet(tokens, labels)


def _clean(text: str) -> str:
    # A tab or newline inside a sentence would break the format; raw sources never need them.
    return " ".join(text.split())


def format_pairs(pairs: PairSet) -> str:
    lines = ["\t".join(PAIR_HEADER)]
    for a, b, label in zip(pairs.text_a, pairs.text_b, pairs.labels):
        text = "[" + ", ".join(str(int(x)) for x in label) + "]" if np.ndim(label) else str(int(label))
        lines.append(f"{_clean(a)}\t{_clean(b)}\t{text}")
    return "\n".join(lines) + "\n"


def format_tokens(tokens: TokenSet) -> str:
    lines = ["\t".join(TOKEN_HEADER)]
    for pieces, bits in zip(tokens.tokens, tokens.labels):
        groups = " ".join("".join(str(int(x)) for x in row) for row in bits)
        lines.append(f"{' '.join(pieces)}\t{groups}")
    return "\n".join(lines) + "\n"


def label_cells(data: PairSet | TokenSet) -> np.ndarray:
    """All (instance[, token]) x layer cells as one (cells, L) array."""
    if isinstance(data, TokenSet):
        return np.concatenate(data.labels, axis=0)
    return np.asarray(data.labels)


def summarize_layers(data: PairSet | TokenSet) -> dict:
    """Counts for the dataset's JSON: rows, cells, fraction of 1s per layer, all-correct/all-wrong rows."""
    cells = label_cells(data)
    out = {"rows": len(data), "cells": int(cells.shape[0]), "layers": int(cells.shape[1]),
           "fraction_correct_per_layer": [round(float(x), 4) for x in cells.mean(axis=0)],
           "fraction_correct": round(float(cells.mean()), 4),
           "all_correct": int(cells.all(axis=1).sum()), "all_wrong": int((~cells.astype(bool)).all(axis=1).sum())}
    return out


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
