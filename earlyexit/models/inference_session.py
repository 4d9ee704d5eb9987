"""An inference session: per-model functions built once for many batches instead of once per batch.

A multi-exit model's early exit builds, per batch, its exit heads as plain functions over their
tensors (`MultiExitClassifier.lean_exits`: each checks its packed and folded weights are current),
and a learned rule its policies' functions. At batch 1 that is once per instance, and right after
the embeddings it cost FastBERT's six heads about 190 µs an instance, 2% of MiniLM's forward
(issue 18). Inside `with model.inference_session():` each is built once (per row count, grad mode
and CPU autocast dtype) and reused by every batch. The timing rule's runner and the overhead
benchmark time every pass inside the timed model's session (earlyexit.cost.inference.TimedModel.
session), the reference forward included.

The functions hold the weights as they were: inside a session the model's weights, dtypes,
devices and train/eval modes must not change. Leaving the session checks that they did not
(every parameter's storage, dtype, device and version counter, every module's mode) and raises
RuntimeError if they did, since what ran inside used stale functions.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Hashable

import torch
from torch import nn

from earlyexit.models.fast_linear import tensor_state

SESSION = "_inference_session"     # the __dict__ slot of the open session's cache (None: none open)


class InferenceSession:
    """Mixin of an nn.Module: `inference_session()` and `session_cached(key, build)`."""

    @contextlib.contextmanager
    def inference_session(self):
        """Reuse `session_cached` functions across batches inside; on leaving, check the model did
        not change (RuntimeError). A nested session is the outer one."""
        if self.__dict__.get(SESSION) is not None:
            yield self
            return
        before = model_state(self)
        self.__dict__[SESSION] = {}
        try:
            yield self
        finally:
            self.__dict__[SESSION] = None
        if model_state(self) != before:
            raise RuntimeError(f"{type(self).__name__}.inference_session: the model's weights or modes changed "
                               "inside the session, so batches in it ran with functions built from the old ones")

    def session_cached(self, key: Hashable, build: Callable[[], object]):
        """`build()`, or inside a session the value it gave the first time for this key (and the
        grad mode and CPU autocast dtype, which decide the packed path)."""
        cache = self.__dict__.get(SESSION)
        if cache is None:
            return build()
        key = (key, torch.is_grad_enabled(),
               torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        found = cache.get(key)
        if found is None:
            found = cache[key] = build()
        return found

    def __getstate__(self):
        # copies start with no session open
        return {key: value for key, value in super().__getstate__().items() if key != SESSION}


def model_state(model: nn.Module) -> tuple:
    """What a session's functions depend on: every parameter's and buffer's storage, dtype, device and
    version counter, and every module's train/eval mode and fast-path switch."""
    tensors = tuple((*tensor_state(t), t.dtype, t.device) for t in (*model.parameters(), *model.buffers()))
    modes = tuple((m.training, getattr(m, "fast", None)) for m in model.modules())
    return tensors, modes
