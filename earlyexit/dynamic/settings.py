"""The `dynamic:` config section (dynamic early-exit methods): schema defaults and per-method settings.

Every default lives in workflow/schemas/config.schema.yaml. The workflow validates the whole config
(filling defaults); code that runs without it (tests, the experiment step called directly) gets the
same filled section through `section`.
"""

from __future__ import annotations

from pathlib import Path

from earlyexit.plumbing.schema_sections import SCHEMA, fill_section


def section(config: dict | None = None, schema: Path = SCHEMA) -> dict:
    """config["dynamic"] checked against the schema with its defaults filled (a copy); an invalid
    value raises ValueError "config key 'dynamic.<key>': ..."."""
    import copy

    return fill_section({"dynamic": copy.deepcopy((config or {}).get("dynamic", {}))}, "dynamic", schema)


def method_settings(dynamic: dict, method: str) -> dict:
    """A method's own settings (RunContext.settings): its `dynamic.<method>` section, {} if none."""
    value = dynamic.get(method, {})
    return dict(value) if isinstance(value, dict) else {}
