"""One writer per run: a run holds an exclusive lock on `<record stem>.lock` beside its record while it
writes its state, record and weights. After `kill -9` of Snakemake its job's Python child can live on;
a rerun after `--unlock` would start a second writer of the same files. The second writer stops with one
line naming the run and the holder's PID. The lock is the kernel's (fcntl.flock), so it is released
whenever the holder ends, however it ends; the file itself is left behind harmlessly."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator


def lock_path(out_json: str | os.PathLike) -> Path:
    path = Path(out_json)
    return path.with_name(f"{path.name.split('.')[0]}.lock")


@contextlib.contextmanager
def run_lock(out_json: str | os.PathLike) -> Iterator[None]:
    """Hold the run's lock for the block; RuntimeError (one line) when another process holds it."""
    path = lock_path(out_json)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RuntimeError(f"run {out_json} is being written by another process (PID {holder}, lock {path}); "
                               "stop it or wait for it to finish before rerunning") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()          # releases the lock
