"""The methods registry: every module of this package (except `base` and `_`-prefixed helpers)
defines one method as `METHOD`. The workflow's wildcards and run inputs, the experiment step and
the tables read this registry, so adding a method means adding one module here and nothing else.

Import cost stays low (the Snakefile reads the registry at parse time): method modules import torch
and the models inside their functions.
"""

from __future__ import annotations

import importlib
import pkgutil

from earlyexit.methods.base import FAMILIES, Method, RunContext, RunOutcome, SweepPoint, run_name, run_variant

__all__ = ["FAMILIES", "METHODS", "Method", "RunContext", "RunOutcome", "SweepPoint", "get_method", "method_variants",
           "config_errors", "hub_unreachable", "backbone_runs", "backbone_allows", "llm_config_errors", "training_runs",
           "with_training_runs", "run_name", "run_variant"]


def _discover() -> dict[str, Method]:
    found: dict[str, Method] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        method = getattr(module, "METHOD", None)
        if not isinstance(method, Method):
            raise ImportError(f"{module.__file__}: a methods module must define METHOD, a Method instance")
        if method.name in found:
            raise ImportError(f"{module.__file__}: method name {method.name!r} is already registered")
        method.check()
        found[method.name] = method
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


METHODS: dict[str, Method] = _discover()


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r} (known: {', '.join(METHODS)})") from None


def method_variants(config_methods: dict) -> list[tuple[str, str]]:
    """(method, variant) pairs a config asks for, in registry order; a method given as null runs
    every variant it defines."""
    pairs = []
    for name, method in METHODS.items():
        if name in config_methods:
            pairs += [(name, v) for v in (config_methods[name] or method.variants)]
    return pairs


def hub_unreachable(method: Method, config: dict) -> bool:
    """The one place deciding that a method's own hub checkpoint cannot be loaded under `config`:
    it needs the hub and the preset runs without network (requirements.network false). Such a method
    gets no job, and tables show "needs hub" in its rows."""
    return method.needs_hub and not (config.get("requirements") or {}).get("network", False)


def backbone_runs(config: dict, backbone: str) -> list[tuple[str, str]]:
    """(method, variant) pairs the config runs on `backbone`: the configured ones, less those the
    backbone's entry leaves out (its optional `methods`: a list of methods, or method -> variants),
    those the method says do not apply to it (e.g. a truncation deeper than the backbone) and those
    whose checkpoint is unreachable."""
    from earlyexit.models.backbones import resolve_entry

    entry = resolve_entry(config["backbones"], backbone)     # a pre-trained-here backbone: its base's depth
    return [(name, variant) for name, variant in method_variants(config["methods"])
            if backbone_allows(entry.get("methods"), name, variant) and not hub_unreachable(METHODS[name], config)
            and METHODS[name].applies(variant, entry)]


def backbone_allows(allowed, method: str, variant: str) -> bool:
    """Whether a backbone entry's `methods` (None: all; a list of methods; method -> variants, null
    for every configured variant) lets `method`'s `variant` run on it."""
    if allowed is None:
        return True
    if isinstance(allowed, dict):
        return method in allowed and (allowed[method] is None or variant in allowed[method])
    return method in allowed


def config_errors(config_methods: dict) -> list[str]:
    """One line per unknown method or variant in the config's `methods` mapping."""
    errors = []
    for name, variants in config_methods.items():
        if name not in METHODS:
            errors.append(f"config key 'methods.{name}': unknown method (known: {', '.join(METHODS)})")
            continue
        if METHODS[name].generation_lm:
            errors.append(f"config key 'methods.{name}': a decoder-LM generation method, run it under llm_generation.methods")
            continue
        for variant in variants or ():
            if variant not in METHODS[name].variants:
                errors.append(f"config key 'methods.{name}': unknown variant {variant!r} "
                              f"(known: {', '.join(METHODS[name].variants)})")
    return errors


def llm_config_errors(section_methods: dict) -> list[str]:
    """One line per entry of llm_generation.methods that is not a generation_lm method or variant."""
    errors = []
    for name, variants in (section_methods or {}).items():
        method = METHODS.get(name)
        if method is None or not method.generation_lm:
            known = ", ".join(n for n, m in METHODS.items() if m.generation_lm)
            errors.append(f"config key 'llm_generation.methods.{name}': not a decoder-LM generation method (known: {known})")
            continue
        errors += [f"config key 'llm_generation.methods.{name}': unknown variant {v!r} (known: {', '.join(method.variants)})"
                   for v in variants or () if v not in method.variants]
    return errors


def method_recipe(training: dict, method_training: dict, recipe: str, method: str) -> dict:
    """The training settings of `method`'s runs: the `training` section, with the method's own recipe
    (method_training.<method>, the schema's default being its paper's) replacing the settings it names
    when the preset trains per method (config training_recipe); `shared`: the training section alone."""
    if recipe not in ("per-method", "shared"):
        raise ValueError(f"config key 'training_recipe': {recipe!r} is not one of per-method, shared")
    own = (method_training or {}).get(method, {}) if recipe == "per-method" else {}
    return {**training, **own}


def run_recipe(training: dict, method_training: dict, recipe: str, method: str, task: str) -> dict:
    """The training settings of one run of `method` on `task`: `method_recipe`, then the task's own
    max_seq_len and epochs where training.max_seq_len_per_task / epochs_per_task name it (over any
    recipe's), without those sections and without what changes no result (save_checkpoint,
    checkpoint_every_steps: changing them must not rerun finished runs)."""
    dropped = ("max_seq_len_per_task", "epochs_per_task", "save_checkpoint", "checkpoint_every_steps")
    settings = method_recipe({k: v for k, v in training.items() if k not in dropped}, method_training, recipe, method)
    if "max_seq_len" in training:               # a summarization section has source/target lengths instead
        settings["max_seq_len"] = task_max_seq_len(training, task)
    if task in (training.get("epochs_per_task") or {}):
        settings["epochs"] = training["epochs_per_task"][task]
    return settings


def task_max_seq_len(training: dict, task: str) -> int:
    """A classification task's max_seq_len (tokenisation and training both read it):
    training.max_seq_len_per_task's entry for the task, else training.max_seq_len."""
    return (training.get("max_seq_len_per_task") or {}).get(task, training["max_seq_len"])


def training_runs(method: Method, variant: str, settings: dict) -> list[tuple[str, dict]]:
    """(run name, training setting) of every run of `variant`: one per value of the method's
    training-time sweep (Method.train_sweep / train_grid, e.g. {"alpha": 0.02} -> "default@alpha=0.02"),
    else the variant itself with {}. `settings`: the method's schema-filled config section."""
    values = method.train_grid(variant, settings) if method.train_sweep else ()
    if not values:
        return [(variant, {})]
    if len(set(values)) != len(values):
        raise ValueError(f"method {method.name}: training grid of {method.train_sweep!r} repeats a value: {list(values)}")
    return [(run_name(variant, {method.train_sweep: value}), {method.train_sweep: value}) for value in values]


def with_training_runs(config: dict, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(method, variant) pairs -> (method, run) pairs: a method with a training-time sweep has one run
    per value (`training_runs`, its settings from the config's `dynamic.<method>` section with the
    schema's defaults filled); the others keep the variant. What the workflow trains and sweeps."""
    from earlyexit.dynamic.settings import method_settings, section

    dynamic = section(config)
    return [(m, run) for m, v in pairs
            for run, _ in training_runs(METHODS[m], v, method_settings(dynamic, m) if METHODS[m].family == "dynamic" else {})]
