"""One GPU job per visible GPU on a local run, each on its own device.

Snakemake limits a custom resource only when `--resources` names it, so a local `snakemake --cores 8`
would start up to 8 `gpu=1` jobs at once, all on the default device. Two parts fix that:
- `local_gpu_limit`: the Snakefile registers the `gpu` resource as the number of visible GPUs when the
  run is local (no `--jobs`, which cluster executors use) and `--resources gpu=N` does not say otherwise;
- `claim_gpu_slot`: a GPU job claims a free device by an exclusive lock (fcntl.flock) on a file per
  device, and sees only that device (CUDA_VISIBLE_DEVICES). The kernel releases the lock whenever the
  job ends, killed or not. When the user allowed more jobs than devices, a job shares the device it
  picks by its PID (said in its log).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger("earlyexit.gpu_slots")
_HELD: list = []          # the claimed slot's open lock file, held for the life of the job's process


def visible_gpus(environ: dict | None = None) -> list[str]:
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES when set, else what nvidia-smi lists
    (without importing torch, which would cost the Snakefile seconds)."""
    environ = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" in environ:
        ids = [d.strip() for d in environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
        # "-1" (or any invalid id) hides the devices after it
        return ids[: ids.index("-1")] if "-1" in ids else ids
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(l for l in listing.splitlines() if l.startswith("GPU "))]


def local_gpu_limit(given_resources, nodes, visible: int) -> int | None:
    """The `gpu` resource to register: the visible GPU count on a local run (nodes None: no --jobs, so
    no cluster executor) when --resources does not name gpu and there is a GPU; else None (leave it)."""
    if nodes is not None or "gpu" in given_resources or visible < 1:
        return None
    return visible


def apply_local_gpu_limit(workflow) -> int | None:
    """Called by the Snakefile (its `workflow` object): register the local GPU limit; returns it."""
    if not workflow.is_main_process:       # a job's own Snakemake (cluster, group) schedules nothing
        return None
    limit = local_gpu_limit(workflow.global_resources, workflow.resource_settings.nodes, len(visible_gpus()))
    if limit is not None:
        workflow.register_resource("gpu", limit)
    return limit


def slot_dir() -> Path:
    """Node-local lock files, one folder per user."""
    return Path(tempfile.gettempdir()) / f"earlyexit-gpu-slots-{os.getuid()}"


def claim_gpu_slot(visible: list[str], lock_dir: str | os.PathLike | None = None):
    """(device id, open lock file) of a free device of `visible`; when every device is held, the one the
    PID picks, shared, with a None lock. The caller keeps the file open while it uses the device."""
    folder = Path(lock_dir) if lock_dir is not None else slot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for device in visible:
        handle = open(folder / f"gpu-{device}.lock", "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return device, handle
    return visible[os.getpid() % len(visible)], None


def pin_job_to_a_gpu(explicit_device: str | None = None) -> str | None:
    """For a GPU job: claim a device and make it the only one torch sees (before CUDA starts). A device
    given with an index (cuda:1) is the user's choice and is left alone. Returns the id, or None."""
    if explicit_device and ":" in str(explicit_device):
        return None
    visible = visible_gpus()
    if not visible:
        return None              # the preflight check says there is no GPU
    device, handle = claim_gpu_slot(visible)
    if handle is None:
        log.warning("every visible GPU (%s) already runs a job of this workflow: sharing GPU %s "
                    "(--resources gpu=N allowed more GPU jobs than devices)", ",".join(visible), device)
    else:
        _HELD.append(handle)
    os.environ["CUDA_VISIBLE_DEVICES"] = device
    return device
