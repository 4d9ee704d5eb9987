"""FLOPs accounting: the analytic count equals torch's FlopCounterMode on the real forward."""

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from earlyexit.cost.flops import (ModelDims, elue_layer_macs, elue_protocol_flops, full_flops, hashee_flops, layer_flops,
                             speedup_record, token_exit_cost)
from earlyexit.models.hashee import HashEEForSequenceClassification
from earlyexit.models.schedule import build_exit_schedule
from tests.conftest import tiny_classifier

aten = torch.ops.aten


def _cpu_sdpa_flops(query, key, value, *args, out_val=None, **kwargs):
    # FlopCounterMode has no entry for the CPU flash kernel; count it with torch's own sdpa formula.
    return sdpa_flop_count(query, key, value)  # shapes are passed in


COUNTER_MAPPING = {aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}


def _counted_flops(run) -> int:
    with FlopCounterMode(display=False, custom_mapping=COUNTER_MAPPING) as counter:
        run()
    return counter.get_total_flops()


# Exact equality, no tolerance: at batch 1 without padding every matmul the forward runs is in the
# analytic count and nothing else is (both leave out LayerNorm, softmax, activations, look-ups).
@pytest.mark.parametrize("kind", ["bert", "roberta"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_analytic_flops_equal_flop_counter_on_the_hashee_forward(kind, seed):
    hf = tiny_classifier(kind, num_layers=6, num_labels=2 + seed)
    model = HashEEForSequenceClassification(hf).eval()
    # own generator: tiny_classifier reseeds the global RNG, which made every seed draw the same case
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(8, 40, (1,), generator=g))
    ids = torch.randint(5, 120, (1, n), generator=g)
    exits = torch.randint(1, 7, (1, n), generator=g)
    exits[0, 0] = 6
    assert len(exits.unique()) > 2   # a real mix of exit layers
    counted = _counted_flops(lambda: model(ids, None, build_exit_schedule(exits, 6)))
    assert counted == hashee_flops(exits[0].numpy(), ModelDims.from_hf_config(hf.config))


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_full_flops_equal_flop_counter_on_the_plain_hf_forward(kind):
    # the full-model cost is measured on HF's own forward, not on ours
    hf = tiny_classifier(kind, num_layers=6, num_labels=3)
    ids = torch.randint(5, 120, (1, 17), generator=torch.Generator().manual_seed(0))
    counted = _counted_flops(lambda: hf(input_ids=ids))
    assert counted == full_flops(17, ModelDims.from_hf_config(hf.config))


def test_full_model_flops_known_value():
    d = ModelDims(hidden=768, heads=12, intermediate=3072, num_layers=12, num_labels=2)
    n = 128
    per_layer = 2 * (4 * n * 768 * 768 + 2 * n * n * 768 + 2 * n * 768 * 3072)
    assert full_flops(n, d) == 12 * per_layer + 2 * 768 * 768 + 2 * 768 * 2


def test_elue_counter_matches_spec_sanity_anchor():
    # hashee-spec 6.1: 12 layers at L = 128 is about 11.2 GMACs
    d = ModelDims(hidden=768, heads=12, intermediate=3072, num_layers=12, num_labels=2)
    assert elue_protocol_flops(128, 12, d) / 2 / 1e9 == pytest.approx(11.18, abs=0.01)


def test_exited_tokens_still_pay_keys_and_values():
    d = ModelDims(hidden=8, heads=2, intermediate=16, num_layers=2, num_labels=2)
    all_exit_1 = hashee_flops(np.array([2, 1, 1, 1]), d)  # [CLS] at layer 2, others exit after layer 1
    layer1 = 2 * (2 * 4 * 64 + 2 * 4 * 64) + 2 * 4 * 4 * 8 * 2 + 2 * 4 * 8 * 16 * 2
    layer2 = 2 * (2 * 1 * 64 + 2 * 4 * 64) + 2 * 1 * 4 * 8 * 2 + 2 * 1 * 8 * 16 * 2
    assert all_exit_1 == layer1 + layer2 + 2 * 64 + 2 * 8 * 2


def test_speedup_record_known_values_in_both_conventions():
    d = ModelDims(hidden=64, heads=4, intermediate=128, num_layers=6, num_labels=2)
    full = token_exit_cost([np.full(10, 6), np.full(20, 6)], d)
    speed = speedup_record(full.tokens, full.method_flops, full.elue_depth, d, reference_layers=12)["speedup"]
    assert speed["flops_vs_own_full"] == speed["elue_vs_own_full"] == 1.0
    # Against 12 layers of the same width: (12 layers + head) / (6 layers + head), summed over instances.
    head = 2 * 64 * 64 + 2 * 64 * 2
    layers = sum(layer_flops(n, n, d) for n in (10, 20))
    assert speed["flops"] == pytest.approx((12 * layers + 2 * head) / (6 * layers + 2 * head), rel=1e-12)
    elue_layers = sum(2 * elue_layer_macs(n, d) for n in (10, 20))
    elue_rest = sum(elue_protocol_flops(n, 0, d) for n in (10, 20))
    assert speed["elue"] == pytest.approx((12 * elue_layers + elue_rest) / (6 * elue_layers + elue_rest), rel=1e-12)
    assert speed["reference_layers"] == 12 and "12-layer reference" in speed["convention"]


def test_speedup_record_of_early_exits():
    d = ModelDims(hidden=64, heads=4, intermediate=128, num_layers=6, num_labels=2)
    early = token_exit_cost([np.array([6] + [1] * 9), np.array([6] + [2] * 19)], d)
    assert list(early.elue_depth) == pytest.approx([(6 + 9) / 10, (6 + 38) / 20])
    record = speedup_record(early.tokens, early.method_flops, early.elue_depth, d, reference_layers=6)
    own = record["flops"]["full_per_instance"] / record["flops"]["method_per_instance"]
    assert record["speedup"]["flops"] == record["speedup"]["flops_vs_own_full"] == pytest.approx(own) and own > 1.5
    with pytest.raises(ValueError):
        speedup_record(np.array([]), np.array([]), np.array([]), d, 12)
