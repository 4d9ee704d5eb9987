"""The one training loop of the suite, used by every method and by the difficulty study.

The loop owns what every run shares: seeding, the optimizer (AdamW or Adam), linear warmup then
decay, gradient clipping, evaluation points, and selection of the checkpoint with the best
validation score (never test, unlike the authors' scripts). What differs between users comes in as
hooks: how one epoch is cut into batches, the loss of a batch, and the evaluation at a point.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from earlyexit.plumbing.torch_setup import linear_warmup_decay, set_seed

log = logging.getLogger("earlyexit.training")


@dataclass(frozen=True)
class TrainConfig:
    """Training settings. No defaults here: the config schema holds them (one place)."""

    lr: float
    batch_size: int
    epochs: int
    eval_batch_size: int
    warmup_ratio: float
    weight_decay: float           # the authors' effective value is 0 (their decay groups are unused)
    grad_clip: float
    max_seq_len: int
    optimizer: str                # adamw | adam
    evals_per_epoch: int
    bf16: bool                    # autocast to bf16 on CUDA (CPU runs stay fp32)
    track_best_on_test: bool      # also score test at every evaluation point (reported, never selects)

    @classmethod
    def from_config(cls, entry: dict, where: str = "training") -> "TrainConfig":
        """Build from a config mapping; unknown or missing keys raise ValueError naming the key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"config key '{where}.{unknown[0]}': unknown training setting "
                             f"(known: {', '.join(sorted(known))})")
        required = [f.name for f in fields(cls) if f.default is MISSING and f.name not in entry]
        if required:
            raise ValueError(f"config key '{where}.{required[0]}': required training setting is missing")
        if entry["optimizer"] not in ("adamw", "adam"):
            raise ValueError(f"config key '{where}.optimizer': {entry['optimizer']!r} is not adamw or adam")
        return cls(**entry)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainHooks:
    """What a user of the loop supplies.

    epoch_batches(rng) -> the batches of one epoch, drawn from the loop's seeded generator;
    loss(batch)        -> scalar loss of one batch (the loop has put the model in train mode);
    evaluate()         -> metrics at an evaluation point, with a float "select" (higher is better);
                          the loop runs it in eval mode without gradients.
    """

    epoch_batches: Callable[[np.random.Generator], Sequence[Any]]
    loss: Callable[[Any], torch.Tensor]
    evaluate: Callable[[], dict]


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    # fused: one kernel for all parameters (5x faster than the per-tensor loop on a 2-core CPU);
    # only for floating-point parameters on CPU/CUDA, which is every model of the suite.
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, eps=1e-8, fused=fused or None)


def train_loop(model: torch.nn.Module, hooks: TrainHooks, cfg: TrainConfig, seed: int, *,
               progress: bool = True, desc: str = "train") -> dict:
    """Train `model` (its trainable parameters) and restore the state with the best "select".

    Evaluates `cfg.evals_per_epoch` times per epoch (evenly spaced, the last at the epoch's end).
    Returns {"selected": the chosen evaluation point, "history": every point, "steps": total steps,
    "train_seconds": wall time}. A point holds epoch, step, the mean training loss since the
    previous point, and whatever `evaluate` returned.
    """
    set_seed(seed)
    rng = np.random.default_rng(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, cfg)
    epochs = [list(hooks.epoch_batches(rng)) for _ in range(cfg.epochs)]
    total_steps = max(1, sum(len(e) for e in epochs))
    scheduler = linear_warmup_decay(optimizer, total_steps, cfg.warmup_ratio)

    history: list[dict] = []
    best, best_state = None, None
    losses: list[torch.Tensor] = []
    step = 0
    started = time.perf_counter()
    bar = tqdm(total=total_steps, desc=desc, disable=not progress, mininterval=5)
    for epoch, batches in enumerate(epochs, start=1):
        points = {round(len(batches) * (k + 1) / cfg.evals_per_epoch) for k in range(cfg.evals_per_epoch)}
        for i, batch in enumerate(batches, start=1):
            model.train()
            loss = hooks.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.detach())       # no host sync per step; read at evaluation points
            step += 1
            bar.update(1)
            if i not in points:
                continue
            model.eval()
            with torch.no_grad():
                point = {"epoch": epoch, "step": step, "loss": float(torch.stack(losses).float().mean()),
                         **hooks.evaluate()}
            losses = []
            history.append(point)
            bar.set_postfix(loss=f"{point['loss']:.4f}", select=f"{point['select']:.4f}", refresh=False)
            log.info("epoch %d step %d loss %.4f select %.4f", epoch, step, point["loss"], point["select"])
            if best is None or point["select"] > best["select"]:
                best, best_state = point, copy.deepcopy(model.state_dict())
    bar.close()
    if best is None:
        raise ValueError("training ran no evaluation point (no batches?)")
    model.load_state_dict(best_state)
    model.eval()
    return {"selected": best, "history": history, "steps": step,
            "train_seconds": time.perf_counter() - started}
