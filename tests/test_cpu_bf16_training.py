"""Opt-in bf16 training on CPU (training.cpu_bf16): CPU runs stay fp32 unless asked; asked, the
GEMMs run in bf16 under autocast and the run learns what the fp32 run learns. The CUDA path's
autocast (bf16 on CUDA) is the same code, exercised here on the CPU."""

import dataclasses

import numpy as np
import pytest
import torch

from earlyexit.data.batching import attach_exit_layers
from earlyexit.training.fine_tuning import fine_tune
from earlyexit.methods import get_method
from earlyexit.models.hashee import HashEEForSequenceClassification
from tests.conftest import tiny_classifier
from tests.test_dynamic_training import context
from tests.test_training import LAYERS, config, toy_split

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("bf16, cpu_bf16, on_cpu, on_cuda", [
    (True, False, False, True),     # the schema's defaults: bf16 on CUDA, fp32 on CPU
    (True, True, True, True),       # the opt-in
    (False, True, False, False),    # bf16 off turns both off
    (False, False, False, False),
])
def test_autocast_is_bf16_on_cuda_and_on_cpu_only_when_opted_in(bf16, cpu_bf16, on_cpu, on_cuda):
    cfg = config(bf16=bf16, cpu_bf16=cpu_bf16)
    assert cfg.autocast_bf16(CPU) is on_cpu and cfg.autocast_bf16(CUDA) is on_cuda


def _fine_tune(cpu_bf16: bool, seen: list):
    """The toy cue task of test_training, 6 epochs; `seen` gets the dtype of every query projection's
    output in training (train mode)."""
    splits = {name: toy_split(n, i) for i, (name, n) in enumerate([("train", 256), ("dev", 64), ("test", 64)])}
    for i, split in enumerate(splits.values()):
        attach_exit_layers(split, None, LAYERS, np.random.default_rng([0, i]))
    model = HashEEForSequenceClassification(tiny_classifier("bert", LAYERS, num_labels=2, seed=0))
    query = next(m for name, m in model.named_modules() if name.endswith("attention.self.query"))
    query.register_forward_hook(lambda module, args, out: seen.append(out.dtype) if module.training else None)
    return fine_tune(model, splits["train"], splits["dev"], splits["test"], metric="accuracy", regression=False,
                     cfg=config(epochs=6, bf16=True, cpu_bf16=cpu_bf16), seed=0, pad_id=0, device=CPU, progress=False)


def test_cpu_bf16_fine_tune_runs_in_bf16_and_learns_like_fp32():
    fp32_dtypes, bf16_dtypes = [], []
    fp32, bf16 = _fine_tune(False, fp32_dtypes), _fine_tune(True, bf16_dtypes)
    assert set(fp32_dtypes) == {torch.float32} and set(bf16_dtypes) == {torch.bfloat16}
    # the first step starts from the same weights: the losses differ by bf16 rounding only (8 bits:
    # relative 2**-8 per product, measured 1e-3 on this model), then the runs drift apart
    first = [h["loss"] for h in (fp32["history"][0], bf16["history"][0])]
    assert first[0] != first[1] and abs(first[0] - first[1]) < 0.02 * abs(first[0])
    # both learn the task (chance 50): the fp32 run's test_training threshold holds in bf16
    assert fp32["test"]["score"] > 75.0 and bf16["test"]["score"] > 75.0


def test_cpu_bf16_reaches_the_dynamic_methods_stages(tmp_path):
    """PABEE's joint stage (the shared multi-exit stage loop) autocasts too when opted in."""
    ctx = context(tmp_path, method="pabee", epochs=4)
    ctx = dataclasses.replace(ctx, train_config=dataclasses.replace(ctx.train_config, bf16=True, cpu_bf16=True))
    method = get_method("pabee")
    seen = []
    original = torch.nn.Linear.forward

    def spy(self, x):
        out = original(self, x)
        if self.training:
            seen.append(out.dtype)
        return out

    torch.nn.Linear.forward = spy
    try:
        outcome = method.run(ctx)
    finally:
        torch.nn.Linear.forward = original
    assert seen and set(seen) == {torch.bfloat16}
    assert outcome.test["score"] > 75.0
