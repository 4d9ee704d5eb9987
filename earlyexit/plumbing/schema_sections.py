"""One validator for one config section, with the schema's defaults filled: for code that runs
without the workflow (tests, benchmarks, the experiment step called directly), which would otherwise
keep defaults of its own. Every default lives in workflow/schemas/config.schema.yaml."""

from __future__ import annotations

import tempfile
from pathlib import Path

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def fill_section(config: dict, name: str, schema: Path = SCHEMA, absent: dict | None = None) -> dict:
    """Check config[name] against the schema's `properties.<name>` and fill its defaults in place, as
    the workflow's `validate(config, schema)` does; the rest of the config may be absent. `absent`: the
    section's value when config has none (else the schema's default). Returns config[name]. An invalid
    value raises ValueError "config key '<name>.<key>': ..." in one line."""
    import yaml
    from jsonschema import ValidationError
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    reference = {"$ref": f"{Path(schema).resolve().as_uri()}#/properties/{name}"}
    if absent is not None:
        reference["default"] = absent
    stub = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": {name: reference}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.schema.yaml"
        path.write_text(yaml.safe_dump(stub))
        try:
            validate(config, str(path))
        except WorkflowError as e:  # its text spans many lines; say which key, in one
            error = e.__context__   # snakemake raises it while handling jsonschema's error
            if not isinstance(error, ValidationError):
                raise
            key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
            raise ValueError(f"config key '{key}': {error.message}") from None
    return config[name]
