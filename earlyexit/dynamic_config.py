"""The `dynamic:` config section (dynamic early-exit methods): schema defaults and per-method settings.

Every default lives in workflow/schemas/config.schema.yaml. The workflow validates the whole config
(filling defaults); code that runs without it (tests, the experiment step called directly) gets the
same filled section through `section`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def section(config: dict | None = None, schema: Path = SCHEMA) -> dict:
    """config["dynamic"] checked against the schema with its defaults filled (a copy); an invalid
    value raises ValueError "config key 'dynamic.<key>': ..."."""
    import copy

    import yaml
    from jsonschema import ValidationError
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    filled = {"dynamic": copy.deepcopy((config or {}).get("dynamic", {}))}
    stub = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": {"dynamic": {"$ref": f"{Path(schema).resolve().as_uri()}#/properties/dynamic"}}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dynamic.schema.yaml"
        path.write_text(yaml.safe_dump(stub))
        try:
            validate(filled, str(path))
        except WorkflowError as e:
            error = e.__context__
            if not isinstance(error, ValidationError):
                raise
            key = ".".join(["dynamic", *map(str, error.absolute_path)])
            raise ValueError(f"config key '{key}': {error.message}") from None
    return filled["dynamic"]


def method_settings(dynamic: dict, method: str) -> dict:
    """A method's own settings (RunContext.settings): its `dynamic.<method>` section, {} if none."""
    value = dynamic.get(method, {})
    return dict(value) if isinstance(value, dict) else {}
