"""The CPU a number was measured on: its model name and whether it has bf16 matrix units (AMX,
AVX512-BF16), which decide whether bf16 on CPU pays off. Named beside every CPU timing."""

from __future__ import annotations

import os
import platform
from functools import lru_cache

BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset]:
    """(model name, flags) from /proc/cpuinfo; ("", {}) where there is none (macOS, Windows)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return "", frozenset()
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = frozenset(value.split())
    return model, flags


def cpu_description() -> dict:
    """{"model", "bf16_units" (the BF16_FLAGS present), "logical_cpus"}."""
    model, flags = _cpuinfo()
    return {"model": model or platform.processor() or platform.machine(),
            "bf16_units": [f for f in BF16_FLAGS if f in flags], "logical_cpus": os.cpu_count()}


def cpu_label(threads: int | None = None) -> str:
    """One line, e.g. "cpu Intel(R) Xeon(R) ... [amx_bf16 avx512_bf16], 2 threads"."""
    info = cpu_description()
    units = f" [{' '.join(info['bf16_units'])}]" if info["bf16_units"] else " [no bf16 units]"
    return f"cpu {info['model']}{units}" + (f", {threads} threads" if threads else "")
