"""Exit heads on one row as single compiled loops (numba), for CPU inference in fp32.

Why: at batch 1 every exit head runs right after a layer has streamed several MB of weights
through the caches, and each torch op then pays for its own cold code and state besides its
weights: after reading 64 MB, a 256×128 `addmv` takes about 50 µs, warm 7 (docs/benchmarks.md,
"Batch 1: one-row exit heads as compiled loops"). A head's ops in one compiled loop pay that once.
What stays a torch op: FastBERT's reduction over every token (a packed oneDNN GEMM, which the
layers have just run).

The loops sum in fp32, as the torch ops do, in another order (reassociation is allowed so that
they vectorise): within about 1e-6 of the torch ops (tests/test_one_row_kernels.py). NaN inputs
give NaN (no finite-math assumption). The heads import this module when they build a one-row
function (numba's import costs a few tenths of a second); each loop compiles at its first call, and
the machine code is cached on disk (numba's `cache=True`)."""

from __future__ import annotations

import math

import numba
import numpy as np

# reassociation and fused multiply-add: the sums vectorise; infinities and NaN keep their meaning
compiled = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})


@compiled
def pooled_row(first, w1, b1, w2, b2):
    """A pooled exit head on one row: pooled = tanh(w1 first + b1) [H], logits = w2 pooled + b2
    [1, C]. Returns (logits, pooled). `first`: the row's first-token state [H]."""
    pooled = _tanh_affine(first, w1, b1)
    return _affine(pooled, w2, b2).reshape((1, w2.shape[0])), pooled


@compiled
def attention_tail(states, mask, query_key, query_key_bias, value_out_dense, value_out_dense_bias, out_w, out_b):
    """FastBERT's head on one row after its reduction, over `fold_one_query`'s matrices
    (earlyexit/models/multi_exit.py): per attention head h, u_h = (query_key x_0 + bias)_h, the
    weights p_h = softmax_t(x_t . u_h + mask_t), z_h = sum_t p_ht x_t; then tanh(value_out_dense
    [z_1 .. z_heads] + bias), and the output layer. `states` [T, w]: the reduced states x_t;
    `mask` [T]: additive (0 on real tokens). Returns the logits [1, C]."""
    tokens, width = states.shape
    query = _affine(states[0], query_key, query_key_bias)      # [heads * w]
    pooled = np.zeros(query.shape[0], np.float32)
    weights = np.empty(tokens, np.float32)
    for start in range(0, query.shape[0], width):              # one attention head: query[start:start + w]
        top = np.float32(0.0)
        for t in range(tokens):
            score = mask[t]
            for j in range(width):
                score += states[t, j] * query[start + j]
            weights[t] = score
            if t == 0 or score > top:
                top = score
        norm = np.float32(0.0)
        for t in range(tokens):
            weights[t] = math.exp(weights[t] - top)
            norm += weights[t]
        for t in range(tokens):
            p = weights[t] / norm
            for j in range(width):
                pooled[start + j] += p * states[t, j]
    dense = _tanh_affine(pooled, value_out_dense, value_out_dense_bias)
    return _affine(dense, out_w, out_b).reshape((1, out_w.shape[0]))


@compiled
def _affine(vector, weight, bias):
    """weight vector + bias [rows], summed in fp32."""
    out = np.empty(weight.shape[0], np.float32)
    for i in range(weight.shape[0]):
        total = bias[i]
        for j in range(vector.shape[0]):
            total += weight[i, j] * vector[j]
        out[i] = total
    return out


@compiled
def _tanh_affine(vector, weight, bias):
    """tanh(weight vector + bias) [rows]."""
    out = _affine(vector, weight, bias)
    for i in range(out.shape[0]):
        out[i] = math.tanh(out[i])
    return out
