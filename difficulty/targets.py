"""Per-layer 0/1 labels <-> a single exit layer (the paper's "predict the exit layer" form).

Rule (documented in docs/difficulty.md): the exit layer of a label row is the earliest layer from
which every later layer is correct, 1..L, or L+1 ("never") when the last layer is wrong. Back to
per-layer bits: 0 before the exit layer, 1 from it on (L+1 -> all 0). The round trip is exact for
monotone rows (once correct, always correct); for the others it is the nearest monotone row that
keeps the last layers' verdict.
"""

from __future__ import annotations

import numpy as np


def exit_layer(bits) -> np.ndarray:
    """(..., L) 0/1 -> (...) exit layer in 1..L+1."""
    bits = np.asarray(bits).astype(bool)
    n_layers = bits.shape[-1]
    # Length of the all-correct suffix: count trailing ones.
    suffix = np.cumprod(bits[..., ::-1], axis=-1).sum(axis=-1)
    return n_layers + 1 - suffix


def bits_from_exit(exit_layers, n_layers: int) -> np.ndarray:
    """(...) exit layer in 1..L+1 -> (..., L) bits: bit l (1-based) = 1 iff l >= exit layer."""
    exit_layers = np.asarray(exit_layers)
    if exit_layers.size and (exit_layers.min() < 1 or exit_layers.max() > n_layers + 1):
        raise ValueError(f"exit layers must lie in 1..{n_layers + 1}")
    layers = np.arange(1, n_layers + 1)
    return (layers >= exit_layers[..., None]).astype(np.int8)
