"""A measured roofline bound for the encoder's linear layers (they are 85-90% of the CPU time).

Each linear layer costs at least the larger of
  - reading its weights once: the bytes of its weights at the rate measured by running every linear
    layer of the model, in forward order, on a single row (so the weights stream from memory as
    they do in a forward, rather than sitting in cache as they would if one layer were repeated), and
  - its FLOPs at the best rate measured for that layer's shape (on 1024 rows).
A forward's bound is the sum over its linear layers of that maximum, with the rows each one really
runs on: every padded position for the full model; for HashEE every position for keys and values
and only the active tokens for the rest (an encoder layer nobody is active in costs nothing).
The bound's speed-up (full bound / HashEE bound) over the FLOPs speed-up is the best efficiency
these kernels allow: at batch 1 the few active tokens of late layers are bound by reading weights.
Attention, LayerNorm and the head are left out of both bounds (attention is ~10% of the time).
"""

from __future__ import annotations

import statistics
import time

import torch


def _median_seconds(fn, repeats: int = 30) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def layer_linears(layer):
    """(name, nn.Linear) of one BERT-family layer, in forward order."""
    return [("query", layer.attention.self.query), ("key", layer.attention.self.key),
            ("value", layer.attention.self.value), ("attn_out", layer.attention.output.dense),
            ("ffn_in", layer.intermediate.dense), ("ffn_out", layer.output.dense)]


def measure(model, dense) -> dict:
    """Per weight shape (out, in): seconds to read the weights once and best FLOP/s (1024 rows),
    with `dense(linear, x)` the kernel the forward uses."""
    linears = [linear for layer in model.layers for _, linear in layer_linears(layer)]
    with torch.inference_mode():
        rows = {linear.in_features: torch.randn(1, linear.in_features) for linear in linears}
        sweep = _median_seconds(lambda: [dense(linear, rows[linear.in_features]) for linear in linears])
        weight_bytes = sum(linear.weight.numel() * linear.weight.element_size() for linear in linears)
        bandwidth = weight_bytes / sweep
        costs = {}
        for linear in linears[:6]:
            shape = tuple(linear.weight.shape)
            if shape in costs:
                continue
            many = torch.randn(1024, shape[1])
            rate = 2 * 1024 * shape[0] * shape[1] / _median_seconds(lambda: dense(linear, many), repeats=10)
            costs[shape] = {"weight_read_seconds": linear.weight.numel() * linear.weight.element_size() / bandwidth,
                            "flops_per_second": rate, "weight_bytes_per_second": bandwidth}
    return costs


def linear_rows(schedule, batch: int, seq_len: int) -> list[dict[str, int]]:
    """Rows each linear layer of each encoder layer runs on in the HashEE forward."""
    rows = []
    for layer, width in enumerate(schedule.active_counts):
        index = schedule.active_index[layer]
        active = 0 if width == 0 else (batch * width if index is None else int(index.numel()))
        kv = 0 if width == 0 else batch * seq_len
        rows.append({"query": active, "key": kv, "value": kv, "attn_out": active, "ffn_in": active, "ffn_out": active})
    return rows


def bound_seconds(model, costs: dict, rows: list[dict[str, int]]) -> float:
    total = 0.0
    for layer, layer_rows in zip(model.layers, rows):
        for name, linear in layer_linears(layer):
            n = layer_rows[name]
            if n == 0:
                continue
            out_f, in_f = linear.weight.shape
            c = costs[(out_f, in_f)]
            total += max(c["weight_read_seconds"], 2 * n * out_f * in_f / c["flops_per_second"])
    return total
