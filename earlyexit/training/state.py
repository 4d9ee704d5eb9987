"""The resumable state of the one training loop: what it holds, how it is written and read back.

A killed or timed-out job that reruns finds the state beside its run record and continues from the
saved step with the model, optimizer, scheduler, RNG states, history and best-so-far of that step,
so it ends with exactly the numbers of an uninterrupted run (on CPU). A state written for other
settings (the fingerprint differs) is discarded with one log line, never resumed.
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from earlyexit.plumbing.files import atomic_path

log = logging.getLogger("earlyexit.training.loop")
FORMAT = 1
# Settings that change no result: a state written under another value is still resumed.
NOT_IN_FINGERPRINT = ("checkpoint_every_steps",)


@dataclass(frozen=True)
class StateFile:
    """Where a run keeps its training state, and what identifies the run beyond the loop's own
    settings and seed (e.g. task, method, variant, digests of its inputs; JSON-like values)."""

    path: str
    identity: dict = field(default_factory=dict)

    def stage(self, name: str) -> "StateFile":
        """The state of one stage of a multi-stage run (e.g. DeeBERT: fine-tune, then exits), each
        stage one `train_loop` call: a file of its own beside this one (`<stem>.<name><suffix>`),
        identified as this run plus the stage. A rerun resumes the stage it was in; stages already
        done are found at their last step and return at once with their selected weights."""
        if not name or "/" in name or "." in name:
            raise ValueError(f"stage name {name!r}: a plain name without '/' or '.' is needed")
        path = Path(self.path)
        return StateFile(str(path.with_name(f"{path.name.split('.')[0]}.{name}{''.join(path.suffixes)}")),
                         {**self.identity, "stage": name})

    def remove(self) -> None:
        """Delete this state and every stage's (once the run's results are safe)."""
        path = Path(self.path)
        stem, suffix = path.name.split(".")[0], "".join(path.suffixes)
        for candidate in [path, *path.parent.glob(f"{stem}.*{suffix}")]:
            candidate.unlink(missing_ok=True)


def file_digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _batches_digest(epochs: Sequence[Sequence[Any]]) -> str:
    """The batch plan the seed drew: a resume re-draws it and must find the same one."""
    digest = hashlib.sha256()
    for batches in epochs:
        digest.update(b"|epoch")
        for batch in batches:
            array = np.asarray(batch)
            digest.update(array.tobytes() if array.dtype != object else repr(batch).encode())
    return digest.hexdigest()


def fingerprint(state: StateFile, settings: dict, seed: int, model: torch.nn.Module, epochs) -> dict:
    """What must be equal for a state to be resumed."""
    shapes = [(name, tuple(p.shape), str(p.dtype), p.requires_grad) for name, p in model.named_parameters()]
    return {
        "training": {k: v for k, v in settings.items() if k not in NOT_IN_FINGERPRINT},
        "seed": seed,
        "run": state.identity,
        "parameters": hashlib.sha256(repr(shapes).encode()).hexdigest(),
        "batches": _batches_digest(epochs),
    }


def _first_difference(saved: dict, current: dict) -> str:
    for key in current:
        if saved.get(key) == current[key]:
            continue
        if isinstance(current[key], dict) and isinstance(saved.get(key), dict):
            inner = sorted(set(current[key]) | set(saved[key]))
            name = next((k for k in inner if saved[key].get(k) != current[key].get(k)), "?")
            return f"{key}.{name}"
        return key
    return "format"


def rng_states() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def restore_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def save(state: StateFile, payload: dict) -> None:
    """Write atomically: a kill during the write leaves the previous state whole."""
    with atomic_path(state.path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)


def load(state: StateFile, current: dict) -> dict | None:
    """The saved payload when it exists and matches `current` (a fingerprint); else None, with one
    log line when a file was there but is not resumed."""
    path = Path(state.path)
    if not path.exists():
        return None
    try:
        # weights_only=False: the file is this run's own (it holds pickled RNG states and the
        # history's metric values), written beside its record, not an input from elsewhere.
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - any unreadable state just means "start over"
        log.warning("training state %s: unreadable (%s), not resumed; training starts at step 0",
                    path, str(error).splitlines()[0] if str(error) else type(error).__name__)
        return None
    if payload.get("format") != FORMAT or payload.get("fingerprint") != current:
        differs = _first_difference(payload.get("fingerprint") or {}, current) if payload.get("format") == FORMAT else "format"
        log.warning("training state %s: written for other settings (%s differs), not resumed; "
                    "training starts at step 0", path, differs)
        return None
    return payload
