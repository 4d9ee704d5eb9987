"""Config validation with one-line messages that name the offending key.

The JSON schema (workflow/schemas/config.schema.yaml) is the single source of truth; this module
only turns jsonschema's first error into a sentence a user can act on, and adds the checks a
schema cannot express (methods and variants known to the registry, bucket counts vs backbone depth).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from earlyexit.data.prepare import task_source


def _key(path) -> str:
    parts = []
    for p in path:
        parts.append(f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p)))
    return "".join(parts) or "<top level>"


def _sentence(error) -> str:
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        prefix = f"{key}." if error.absolute_path else ""
        return f"config key '{prefix}{unknown[0]}': unknown key (allowed: {', '.join(error.schema.get('properties', {}))})"
    if error.validator == "enum":
        return f"config key '{key}': {error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "required":
        return f"config key '{key}': {error.message}"
    return f"config key '{key}': {error.message}"


def config_errors(config: dict, schema_path: str | Path) -> list[str]:
    schema = yaml.safe_load(Path(schema_path).read_text())
    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        return [_sentence(error)]
    from earlyexit.methods import config_errors as method_errors

    messages = method_errors(config["methods"])
    buckets = config["hash"]["num_buckets"]
    for name, backbone in config["backbones"].items():
        layers = backbone.get("num_layers")
        if layers is not None and buckets > layers:
            messages.append(f"config key 'hash.num_buckets': {buckets} buckets exceed the {layers} layers of backbone '{name}'")
        if backbone["source"] == "hub" and "hub_id" not in backbone:
            messages.append(f"config key 'backbones.{name}.hub_id': required when source is 'hub'")
    dir_tasks = [task for task in config["tasks"] if task_source(config["data"], task) == "dir"]
    if dir_tasks and not config["data"].get("data_dir"):
        messages.append(f"config key 'data.data_dir': required when a task's source is 'dir' ({', '.join(dir_tasks)})")
    return messages
