"""Run set-up shared by every training loop of the suite (HashEE fine-tuning, the difficulty study):
seeds, device choice and the linear warmup-then-decay learning-rate schedule."""

from __future__ import annotations

import random

import numpy as np
import torch


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA when present for "auto" or None, else CPU; any other value is a torch device name."""
    if requested and requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def linear_warmup_decay(optimizer, total_steps: int, warmup_ratio: float):
    """LR rises linearly over the first warmup_ratio of the steps, then falls linearly to 0."""
    warmup = int(warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
