"""earlyexit/models/one_row_kernels.py: the one-row exit heads' compiled loops against float64
references written with torch's ops, padding, NaN and repeatability."""

import math

import numpy as np
import pytest
import torch

from earlyexit.models.one_row_kernels import attention_tail, pooled_row


def _f32(*shape, scale=1.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _attention_reference(states, mask, query_key, query_key_bias, value_out_dense, value_out_dense_bias, out_w, out_b):
    """attention_tail's formula in float64 with torch's ops (per head: scores, softmax, pooling)."""
    x, m = torch.from_numpy(states).double(), torch.from_numpy(mask).double()
    qk, qkb, vod, vodb, ow, ob = (torch.from_numpy(a).double() for a in
                                  (query_key, query_key_bias, value_out_dense, value_out_dense_bias, out_w, out_b))
    width = x.shape[1]
    query = (qk @ x[0] + qkb).view(-1, width)                       # [heads, w]
    weights = torch.softmax(query @ x.T + m, dim=-1)                # [heads, T]
    pooled = (weights @ x).reshape(-1)                              # the heads side by side
    return (ow @ torch.tanh(vod @ pooled + vodb) + ob)[None]


def _attention_inputs(tokens=9, width=16, heads=2, classes=3):
    return (_f32(tokens, width, seed=1), np.zeros(tokens, np.float32),
            _f32(heads * width, width, scale=0.3, seed=2), _f32(heads * width, seed=3),
            _f32(width, heads * width, scale=0.3, seed=4), _f32(width, seed=5),
            _f32(classes, width, seed=6), _f32(classes, seed=7))


def test_attention_tail_equals_the_float64_formula():
    inputs = _attention_inputs()
    logits = attention_tail(*inputs)
    assert logits.shape == (1, 3) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, _attention_reference(*inputs).numpy(), rtol=0, atol=1e-5)
    assert np.array_equal(attention_tail(*inputs), logits)          # the same input, the same bits


def test_attention_tail_ignores_masked_positions():
    """Positions with the dtype's minimum in the additive mask get weight 0: huge states there do
    not move the answer, which equals the answer on the real positions alone."""
    states, mask, *weights = _attention_inputs(tokens=9)
    padded, padded_mask = states.copy(), mask.copy()
    padded[6:] *= 1e3
    padded_mask[6:] = np.finfo(np.float32).min
    np.testing.assert_allclose(attention_tail(padded, padded_mask, *weights),
                               attention_tail(states[:6].copy(), mask[:6].copy(), *weights), rtol=0, atol=1e-6)
    assert not np.allclose(attention_tail(padded, mask, *weights), attention_tail(states[:6].copy(), mask[:6].copy(), *weights))


def test_pooled_row_equals_the_float64_formula_and_returns_the_pooled_vector():
    first, w1, b1, w2, b2 = _f32(24, seed=1), _f32(24, 24, scale=0.3, seed=2), _f32(24, seed=3), _f32(2, 24, seed=4), _f32(2, seed=5)
    logits, pooled = pooled_row(first, w1, b1, w2, b2)
    expected_pooled = torch.tanh(torch.from_numpy(w1).double() @ torch.from_numpy(first).double() + torch.from_numpy(b1).double())
    np.testing.assert_allclose(pooled, expected_pooled.numpy(), rtol=0, atol=1e-6)
    expected = torch.from_numpy(w2).double() @ expected_pooled + torch.from_numpy(b2).double()
    assert logits.shape == (1, 2)
    np.testing.assert_allclose(logits[0], expected.numpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("kernel", ["pooled", "attention"])
def test_nan_in_the_states_gives_nan_logits(kernel):
    """No finite-math assumption: a NaN state gives NaN logits, as the torch ops do (and the entropy
    rules then let nobody exit)."""
    if kernel == "pooled":
        first = _f32(8)
        first[3] = math.nan
        logits, _ = pooled_row(first, _f32(8, 8), _f32(8), _f32(2, 8), _f32(2))
    else:
        states, *rest = _attention_inputs()
        states[0, 0] = math.nan
        logits = attention_tail(states, *rest)
    assert np.isnan(logits).all()
