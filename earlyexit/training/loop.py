"""The one training loop of the suite, used by every method and by the difficulty study.

The loop owns what every run shares: seeding, the optimizer (AdamW or Adam), linear warmup then
decay, gradient clipping, evaluation points, and selection of the checkpoint with the best
validation score (never test, unlike the authors' scripts). What differs between users comes in as
hooks: how one epoch is cut into batches, the loss of a batch, the evaluation at a point and,
optionally, parameter groups or further optimizers (a method with learned loss weights).
Given a state file, the loop is resumable (earlyexit.training.state): it writes its state every
`checkpoint_every_steps` steps and at each evaluation point, and a rerun continues from it.
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

from earlyexit.training import state as train_state
from earlyexit.plumbing.torch_setup import linear_warmup_decay, set_seed
from earlyexit.training.state import StateFile

log = logging.getLogger("earlyexit.training.loop")


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
    bf16: bool                    # autocast to bf16 on CUDA
    cpu_bf16: bool                # also on CPU (opt-in: pays off on CPUs with AMX / AVX512-BF16)
    track_best_on_test: bool      # also score test at every evaluation point (reported, never selects)
    # The one default: it changes no result, only how much a resumed run repeats, so loop users
    # without a state file (the difficulty study, tests) need not state it. 0: evaluation points only.
    checkpoint_every_steps: int = 0

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

    def autocast_bf16(self, device) -> bool:
        """Whether this run autocasts to bf16 on `device`: on CUDA when bf16, on CPU only when also
        cpu_bf16 (fp32 stays the CPU default: bf16 is several times faster only with bf16 units)."""
        return self.bf16 and (device.type == "cuda" or (device.type == "cpu" and self.cpu_bf16))


@dataclass
class TrainHooks:
    """What a user of the loop supplies.

    epoch_batches(rng) -> the batches of one epoch, drawn from the loop's seeded generator;
    loss(batch)        -> scalar loss of one batch (the loop has put the model in train mode); a hook
                          that splits a large batch into micro-batches may call backward on all but
                          one itself (the gradients are zeroed before the call) and return the last
                          one's loss plus the others' detached;
    evaluate()         -> metrics at an evaluation point, with a float "select" (higher is better);
                          the loop runs it in eval mode without gradients;
    before_step(step)  -> optional: called before each step's loss with the number of optimizer steps
                          done so far (0, 1, ...), e.g. to set a schedule that depends on the step
                          (BERT-of-Theseus' replacement rate); after a resume it continues at the
                          resumed step, so what it sets must follow from `step` alone;
    param_groups(params) -> optional: the loop's optimizer's parameter groups (torch dicts with
                          "params" and, where they differ from the config, "lr" / "weight_decay"),
                          covering each of `params` (the trainable parameters the loop steps) once,
                          e.g. learned loss weights at a rate of their own; the schedule scales every
                          group alike;
    extra_optimizers()  -> optional: further optimizers (LeeBERT-style methods: a second one for the
                          learned layer weights) over parameters the loop's own optimizer then leaves
                          out; zeroed, clipped and stepped with it at every step (unscheduled), saved
                          and resumed with the training state.
    """

    epoch_batches: Callable[[np.random.Generator], Sequence[Any]]
    loss: Callable[[Any], torch.Tensor]
    evaluate: Callable[[], dict]
    before_step: Callable[[int], None] | None = None
    param_groups: Callable[[list], list[dict]] | None = None
    extra_optimizers: Callable[[], list] | None = None


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The config's optimizer over `params`: parameters, or parameter groups (dicts with "params")."""
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    flat = [p for group in params for p in group["params"]] if params and isinstance(params[0], dict) else params
    # fused: one kernel for all parameters (5x faster than the per-tensor loop on a 2-core CPU);
    # only for floating-point parameters on CPU/CUDA, which is every model of the suite.
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in flat)
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, eps=1e-8, fused=fused or None)


def _optimizers(model: torch.nn.Module, hooks: TrainHooks, cfg: TrainConfig):
    """(the loop's optimizer, the hooks' extra ones, every parameter they step)."""
    extra = list(hooks.extra_optimizers()) if hooks.extra_optimizers is not None else []
    owned = {id(p) for optimizer in extra for group in optimizer.param_groups for p in group["params"]}
    params = [p for p in model.parameters() if p.requires_grad and id(p) not in owned]
    groups = params
    if hooks.param_groups is not None:
        groups = hooks.param_groups(params)
        grouped = [id(p) for group in groups for p in group["params"]]
        if sorted(grouped) != sorted(map(id, params)):
            raise ValueError("param_groups must hold each trainable parameter of the loop exactly once")
    stepped = params + [p for optimizer in extra for group in optimizer.param_groups for p in group["params"]]
    return make_optimizer(groups, cfg), extra, stepped


def train_loop(model: torch.nn.Module, hooks: TrainHooks, cfg: TrainConfig, seed: int, *,
               progress: bool = True, desc: str = "train", state: StateFile | None = None) -> dict:
    """Train `model` (its trainable parameters) and restore the state with the best "select".

    Evaluates `cfg.evals_per_epoch` times per epoch (evenly spaced, the last at the epoch's end).
    Returns {"selected": the chosen evaluation point, "history": every point, "steps": total steps,
    "train_seconds": wall time}. A point holds epoch, step, the mean training loss since the
    previous point, and whatever `evaluate` returned. With `state`, the training state is written
    there and a matching state found there is resumed (the caller removes it once its results are
    safe); the hooks must then hold no state of their own that carries from step to step.
    """
    set_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer, extra, params = _optimizers(model, hooks, cfg)
    # All epochs' batches are drawn up front, so a resume re-draws the same plan from the seed.
    epochs = [list(hooks.epoch_batches(rng)) for _ in range(cfg.epochs)]
    total_steps = max(1, sum(len(e) for e in epochs))
    scheduler = linear_warmup_decay(optimizer, total_steps, cfg.warmup_ratio)

    history: list[dict] = []
    best, best_state = None, None
    losses: list[torch.Tensor] = []
    step, seconds_before = 0, 0.0
    current = train_state.fingerprint(state, cfg.as_dict(), seed, model, epochs) if state else None
    saved = train_state.load(state, current) if state else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        for other, saved_state in zip(extra, saved.get("extra_optimizers", [])):
            other.load_state_dict(saved_state)
        scheduler.load_state_dict(saved["scheduler"])
        history, best, best_state = saved["history"], saved["best"], saved["best_state"]
        losses = list(saved["losses"].unbind()) if len(saved["losses"]) else []
        step, seconds_before = saved["step"], saved["seconds"]
        train_state.restore_rng_states(saved["rng"])   # last: nothing after it may draw
        log.info("resuming from %s at step %d of %d", state.path, step, total_steps)
    started = time.perf_counter()

    def save_state():
        train_state.save(state, {
            "fingerprint": current, "step": step, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            **({"extra_optimizers": [other.state_dict() for other in extra]} if extra else {}),
            "rng": train_state.rng_states(), "history": history, "best": best, "best_state": best_state,
            "losses": torch.stack(losses) if losses else torch.empty(0),
            "seconds": seconds_before + time.perf_counter() - started,
        })

    bar = tqdm(total=total_steps, initial=step, desc=desc, disable=not progress, mininterval=5)
    done = 0                                   # steps passed over, including those before a resume
    for epoch, batches in enumerate(epochs, start=1):
        points = {round(len(batches) * (k + 1) / cfg.evals_per_epoch) for k in range(cfg.evals_per_epoch)}
        for i, batch in enumerate(batches, start=1):
            done += 1
            if done <= step:
                continue
            model.train()
            if hooks.before_step is not None:
                hooks.before_step(step)
            for each in (optimizer, *extra):        # before the hook: a hook may backward micro-batches itself
                each.zero_grad(set_to_none=True)
            loss = hooks.loss(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            for other in extra:
                other.step()
            scheduler.step()
            losses.append(loss.detach())       # no host sync per step; read at evaluation points
            step += 1
            bar.update(1)
            periodic = cfg.checkpoint_every_steps > 0 and step % cfg.checkpoint_every_steps == 0
            if i in points:
                model.eval()
                with torch.no_grad():
                    point = {"epoch": epoch, "step": step,
                             "loss": float(torch.stack(losses).float().mean()), **hooks.evaluate()}
                losses = []
                history.append(point)
                bar.set_postfix(loss=f"{point['loss']:.4f}", select=f"{point['select']:.4f}", refresh=False)
                log.info("epoch %d step %d loss %.4f select %.4f", epoch, step, point["loss"], point["select"])
                if best is None or point["select"] > best["select"]:
                    best, best_state = point, copy.deepcopy(model.state_dict())
            if state and (periodic or i in points):
                save_state()
    bar.close()
    if best is None:
        raise ValueError("training ran no evaluation point (no batches?)")
    model.load_state_dict(best_state)
    model.eval()
    return {"selected": best, "history": history, "steps": step,
            "train_seconds": seconds_before + time.perf_counter() - started}
