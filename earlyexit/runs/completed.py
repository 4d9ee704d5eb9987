"""Finished runs survive a failed job. Snakemake deletes every output of a job that fails, so a grouped
job (every variant x seed of a method in one job) killed after k finished runs would retrain all of
them. A finished run therefore also keeps its completed state beside its training state: its record
(`<stem>.completed.json`, with the fingerprint of everything it was computed from) and a hard link to
its weights (`<stem>.completed.pt`, no extra disk). The rerun restores a run whose fingerprint matches
instead of training it again; the job discards the completed states once all its runs are done, so a
deliberate rerun (--forcerun) trains anew."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from earlyexit.plumbing.files import atomic_path, atomic_write_json, read_json

log = logging.getLogger("earlyexit.runs.completed")


def _paths(out_json: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(out_json)
    stem = path.name.split(".")[0]
    return path.with_name(f"{stem}.completed.json"), path.with_name(f"{stem}.completed.pt")


def keep(out_json: str | os.PathLike, checkpoint: str | os.PathLike | None, fingerprint: dict) -> None:
    """Keep a finished run's record (already written at `out_json`) and weights as its completed state."""
    record_copy, weights_copy = _paths(out_json)
    if checkpoint is not None and Path(checkpoint).exists():
        with atomic_path(weights_copy) as tmp:
            tmp.unlink(missing_ok=True)
            try:
                os.link(checkpoint, tmp)        # a second name for the same file: no copy
            except OSError:
                shutil.copyfile(checkpoint, tmp)
    # written last: its presence says the weights beside it are complete
    atomic_write_json(record_copy, {"fingerprint": fingerprint, "record": read_json(out_json),
                                    "weights": checkpoint is not None and Path(checkpoint).exists()})


def restore(out_json: str | os.PathLike, checkpoint: str | os.PathLike | None, fingerprint: dict) -> dict | None:
    """The kept record, with the record and weights put back at their outputs, when a completed state of
    this exact run exists; else None (and a stale one is left for `keep` to replace)."""
    record_copy, weights_copy = _paths(out_json)
    if not record_copy.exists():
        return None
    try:
        kept = read_json(record_copy)
    except (OSError, ValueError):
        return None
    if kept.get("fingerprint") != fingerprint or (kept.get("weights") and not weights_copy.exists()):
        log.warning("completed state %s: written for other settings, not restored; the run trains", record_copy)
        return None
    if checkpoint is not None and kept.get("weights"):
        with atomic_path(checkpoint) as tmp:
            tmp.unlink(missing_ok=True)
            try:
                os.link(weights_copy, tmp)
            except OSError:
                shutil.copyfile(weights_copy, tmp)
    atomic_write_json(out_json, kept["record"])
    log.info("%s: restored from its completed state (finished before the job failed); not trained again", out_json)
    return kept["record"]


def discard(out_json: str | os.PathLike) -> None:
    """Remove a run's completed state (its job has finished; the outputs hold the results)."""
    for path in _paths(out_json):
        path.unlink(missing_ok=True)
