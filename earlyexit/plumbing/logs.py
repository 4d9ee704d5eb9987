"""Send a rule's Python logging and warnings to its Snakemake log file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup_logging(log_path: str | None = None, level: int = logging.INFO) -> logging.Logger:
    """Log to `log_path` (created) and to stderr; returns the suite's logger."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    return logging.getLogger("earlyexit")


# Errors that mean "bad input or environment": reported in one line, no traceback.
USER_ERRORS = (ValueError, FileNotFoundError, RuntimeError, KeyError)


def run_step(log_path: str | None, step, *args, **kwargs):
    """Run one workflow step with logging to `log_path`; a user error ends it with one line, exit 1."""
    log = setup_logging(log_path)
    try:
        return step(*args, **kwargs)
    except USER_ERRORS as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        log.error("%s", message)
        sys.exit(1)
