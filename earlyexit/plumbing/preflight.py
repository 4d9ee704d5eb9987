"""What a job needs from its machine, checked where the job runs (a SLURM node, not the login node).

The rules ask for a GPU with Snakemake's standard `gpu` resource (`gpus_for`); each job's script
then calls `check_job`, which stops it in one line when it asked for a GPU and torch sees none,
or when it downloads from the HF hub and the hub's host cannot be resolved.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse


def gpu_needed(requirements: dict, device: str | None) -> bool:
    """A CUDA device is needed when asked for by name, or under `auto` when the preset requires one."""
    device = str(device or "auto").lower()
    if device == "auto":
        return bool((requirements or {}).get("gpu"))
    return device.startswith("cuda")


def gpus_for(config: dict, device: str | None, trains_transformer: bool = True) -> int:
    """The `gpu` resource of a job: 1 for a transformer-training job whose config needs a GPU, else 0."""
    return int(bool(trains_transformer) and gpu_needed(config.get("requirements", {}), device))


def uses_hub(*specs) -> bool:
    """True when any spec is "hub" or a mapping (nested) with `source: hub`."""
    for spec in specs:
        if spec == "hub":
            return True
        if isinstance(spec, dict):
            if spec.get("source") == "hub" or uses_hub(*spec.values()):
                return True
    return False


def job_errors(gpus: int, hub: bool) -> list[str]:
    errors = []
    if gpus:
        import torch

        if not torch.cuda.is_available():
            errors.append(f"this job asked for {gpus} GPU (resource gpu; config requirements.gpu / device) "
                          "and torch sees no CUDA device on this node")
    # HF_HUB_OFFLINE=1 means "read the HF cache only" (e.g. filled on a login node): nothing to resolve.
    if hub and os.environ.get("HF_HUB_OFFLINE") != "1":
        host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
        try:
            socket.getaddrinfo(host, 443)
        except OSError:
            errors.append(f"this job downloads from the HF hub (source: hub) but {host} cannot be resolved here; "
                          "fill the HF cache where there is network and set HF_HUB_OFFLINE=1, or use local sources")
    return errors


def check_job(smk, *hub_specs) -> None:
    """Stop a Snakemake script job in one line (stderr and its log) when its node lacks what it needs.

    smk: the `snakemake` object of the script; hub_specs: the params that say where it downloads from.
    """
    gpus = int(getattr(smk.resources, "gpu", 0) or 0)
    if gpus:   # its own device on a machine with several (a slot per GPU, released when the job ends)
        from earlyexit.plumbing.gpu_slots import pin_job_to_a_gpu

        pin_job_to_a_gpu(getattr(getattr(smk, "params", None), "device", None))
    errors = job_errors(gpus, uses_hub(*hub_specs))
    if errors:
        message = f"preflight: {errors[0]}"
        if smk.log:  # --show-failed-logs prints the log: say it there too
            Path(smk.log[0]).parent.mkdir(parents=True, exist_ok=True)
            Path(smk.log[0]).write_text(message + "\n", encoding="utf-8")
        sys.exit(message)
