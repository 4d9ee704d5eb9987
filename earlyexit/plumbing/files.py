"""Atomic file writes: a crash never leaves a half-written file that looks complete."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterator


def _create_beside(final: Path) -> Path:
    """Create a new empty file beside `final` with mode 0666 & ~umask, as open() would.

    tempfile.mkstemp creates 0600 files, so results on a shared cluster folder would be unreadable
    to the user's group; O_EXCL keeps the name unique between concurrent writers."""
    while True:
        tmp = final.parent / f".{final.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_beside(final)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_npz(path: str | os.PathLike) -> dict:
    """Every array of an .npz archive, read now (np.load reads members lazily, so a truncated file would
    fail later, deep in a caller, as zipfile.BadZipFile naming no file). A missing file raises
    FileNotFoundError; a truncated or corrupt one a ValueError naming it, in one line."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: not a complete .npz archive ({reason}); delete it and rerun the rule that "
                         "writes it") from None
