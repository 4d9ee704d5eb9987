"""Read a JSON file the workflow wrote (run record, sweep, timing) and check it against its schema
in workflow/schemas/: a bad file is one ValueError naming the file and, where it can, the field."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from earlyexit.plumbing.files import read_json

SCHEMAS = Path(__file__).resolve().parents[2] / "workflow" / "schemas"


@functools.lru_cache(maxsize=8)
def _validator(schema_path: str):
    # cached: collecting a grid reads hundreds of records against the same few schemas
    import yaml
    from jsonschema import Draft202012Validator

    return Draft202012Validator(yaml.safe_load(Path(schema_path).read_text(encoding="utf-8")))


def schema_problem(record, schema_path: str | os.PathLike) -> str | None:
    """"<field>: <message>" of the most relevant schema violation, or None when `record` passes."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator(str(schema_path)).iter_errors(record))
    if error is None:
        return None
    where = ".".join(map(str, error.absolute_path))
    return f"{where}: {error.message}" if where else error.message


def read_checked_json(path: str | os.PathLike, schema_path: str | os.PathLike, what: str) -> dict:
    """The JSON content of `path` (`what` it is, for the message) once it passes `schema_path`."""
    try:
        content = read_json(path)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read {what} ({error.strerror})") from None
    problem = schema_problem(content, schema_path)
    if problem:
        raise ValueError(f"{path}: {problem}")
    return content
