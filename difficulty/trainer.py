"""The one training loop of the study: seeded, linear warmup/decay, gradient clipping, and the
checkpoint chosen by a validation score after each epoch (never by test, unlike the authors)."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from difficulty.encoding import batches
from earlyexit.torch_setup import linear_warmup_decay, set_seed

log = logging.getLogger("difficulty.trainer")


@dataclass
class FitConfig:
    lr: float = 1e-3
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int = 128
    optimizer: str = "adam"      # adam | adamw
    warmup_ratio: float = 0.0
    grad_clip: float = 1.0
    weight_decay: float = 0.0    # the authors' effective value
    max_seq_len: int = 128

    @classmethod
    def from_dict(cls, entry: dict) -> "FitConfig":
        unknown = set(entry) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown training setting(s) {sorted(unknown)}; allowed: {sorted(cls.__dataclass_fields__)}")
        return cls(**entry)

    def as_dict(self) -> dict:
        return asdict(self)


def fit(model, n_train: int, loss_fn, evaluate, cfg: FitConfig, seed: int) -> dict:
    """Train `model` on indices 0..n_train-1.

    loss_fn(index list) -> scalar loss; evaluate(epoch) -> dict with a "select" score (higher is
    better) and anything worth keeping per epoch. The state with the best "select" is restored.
    """
    set_seed(seed)
    rng = np.random.default_rng(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-n_train // cfg.batch_size)
    total = max(1, steps_per_epoch * cfg.epochs)
    scheduler = linear_warmup_decay(optimizer, total, cfg.warmup_ratio)

    history, best, best_state = [], None, None
    started = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        losses = []
        epoch_batches = batches(n_train, cfg.batch_size, rng)
        report_every = max(1, len(epoch_batches) // 5)  # a sign of life on long CPU epochs
        for step, index in enumerate(epoch_batches, start=1):
            loss = loss_fn(index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            if step % report_every == 0 and len(epoch_batches) >= 50:
                log.info("epoch %d step %d/%d loss %.4f", epoch, step, len(epoch_batches), np.mean(losses[-report_every:]))
        model.eval()
        with torch.no_grad():
            record = {"epoch": epoch, "loss": float(np.mean(losses)), **evaluate(epoch)}
        history.append(record)
        log.info("epoch %d loss %.4f select %.4f", epoch, record["loss"], record["select"])
        if best is None or record["select"] > best["select"]:
            best, best_state = record, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return {"selected_epoch": best["epoch"], "history": history, "train_seconds": time.perf_counter() - started}
