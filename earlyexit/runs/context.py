"""The one factory of a run's `RunContext` (earlyexit.methods.base), for every step that hands a method
its run: training and evaluation (experiment.py), the exit sweep of a saved checkpoint (sweeps.py) and
the timing (timing.py). One place resolves the method's settings (its config section over the schema's
defaults, with the run's training-time value laid over), checks the variant and picks the device."""

from __future__ import annotations

from earlyexit.methods.base import Method, RunContext


def run_settings(method: Method, variant: str, method_settings: dict | None = None,
                 train_setting: dict | None = None) -> dict:
    """The settings a run of `method` in `variant` gets (RunContext.settings). `method_settings`: the
    method's config section (dynamic methods: `dynamic.<method>`); None: the schema's defaults ({} for
    a method without a section). `train_setting`: the run's value of the method's training-time sweep
    (Method.train_sweep, e.g. {"alpha": 0.02}), laid over them; {} or None: none."""
    if variant not in method.variants:
        raise ValueError(f"method {method.name!r} has no variant {variant!r} (known: {', '.join(method.variants)})")
    if method_settings is None:
        from earlyexit.dynamic.settings import method_settings as settings_of, section

        method_settings = settings_of(section(), method.name) if method.family == "dynamic" else {}
    train_setting = dict(train_setting or {})
    if train_setting and set(train_setting) != {method.train_sweep}:
        raise ValueError(f"method {method.name!r}: training setting {train_setting} is not its training-time sweep "
                         f"parameter ({method.train_sweep!r})")
    return {**method_settings, **train_setting}


def run_context(method: Method, *, task, backbone, variant: str, seed: int, splits: dict, meta: dict, train_config,
                device=None, method_settings: dict | None = None, train_setting: dict | None = None,
                artifacts: dict | None = None, **fields) -> RunContext:
    """The RunContext of one run of `method` (a registry Method) in `variant`. `task`: a TaskSpec;
    `device`: a torch.device, a device name, or None/"auto" (CUDA when present); `method_settings` and
    `train_setting` as in `run_settings`; `artifacts`: name -> path; `fields`: the other RunContext
    fields (checkpoint, train_state, progress, tokenized, generation, reference_layers, ...)."""
    from earlyexit.plumbing.torch_setup import pick_device

    return RunContext(task=task, backbone=backbone, variant=variant, seed=seed, splits=splits, meta=meta,
                      artifacts={name: str(path) for name, path in (artifacts or {}).items()},
                      train_config=train_config, device=pick_device(device),
                      settings=run_settings(method, variant, method_settings, train_setting), **fields)
