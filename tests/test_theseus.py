"""BERT-of-Theseus: the replacement-rate schedules' known values, module replacement at p = 0 / 1 /
eval, the frozen predecessor, and a run that ends with a half-depth successor counted as such."""

import numpy as np
import pytest
import torch

from earlyexit.data.batching import attach_exit_layers, collate
from earlyexit.data.encoded import EncodedSplit, load_encoded
from earlyexit.runs.experiment import run_experiment
from earlyexit.cost.flops import ModelDims, elue_protocol_flops, full_flops
from earlyexit.models.encoder_classifier import EncoderClassifier
from earlyexit.models.replacement import ConstantReplacement, LinearReplacement
from earlyexit.models.theseus import TheseusClassifier
from tests.conftest import tiny_classifier
from tests.test_methods_contract import BACKBONE, ONE_STEP, make_artifacts


def test_replacement_schedules_known_values():
    linear = LinearReplacement()
    assert linear(0) == 0.3 and linear(1000) == pytest.approx(0.9)
    assert linear(1166) == pytest.approx(0.9996) and linear(1167) == 1.0 and linear(10 ** 6) == 1.0
    constant = ConstantReplacement()
    assert constant(0) == constant(2499) == 0.5 and constant(2500) == constant(9999) == 1.0


def no_dropout(model):
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def inputs(layers):
    ids = torch.randint(5, 120, (3, 9), generator=torch.Generator().manual_seed(3))
    split = EncodedSplit(input_ids=[ids[0].numpy(), ids[1, :6].numpy(), ids[2, :3].numpy()], token_type_ids=None,
                         labels=np.array([0, 1, 2]))
    attach_exit_layers(split, None, layers, np.random.default_rng(0))
    return collate(split, np.arange(3), 0, layers)


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_replacement_at_one_is_the_successor_alone_and_at_zero_the_predecessor(kind):
    predecessor = no_dropout(tiny_classifier(kind, num_layers=4))
    b = inputs(4)
    with torch.no_grad():
        expected_predecessor = EncoderClassifier(predecessor).eval()(b.input_ids, None, b.schedule)
    model = TheseusClassifier(predecessor, 2)
    with torch.no_grad():                   # the successor starts as predecessor layers 1-2: train it apart
        for p in model.successor.parameters():
            p.add_(0.05 * torch.randn_like(p))
    successor = EncoderClassifier(model.successor_model()).eval()
    assert len(successor.base.encoder.layer) == 2 and successor.hf.config.num_hidden_layers == 2
    with torch.no_grad():
        alone = successor(b.input_ids, None, b.schedule)
        model.train()
        model.replace_prob = 1.0
        assert torch.allclose(model(b.input_ids, None, b.schedule), alone, atol=1e-6)
        model.replace_prob = 0.0
        assert torch.allclose(model(b.input_ids, None, b.schedule), expected_predecessor, atol=1e-6)
        assert not torch.allclose(alone, expected_predecessor, atol=1e-4)
        model.eval()                        # eval runs the successor whatever p is
        assert torch.allclose(model(b.input_ids, None, b.schedule), alone, atol=1e-6)


def test_replacement_draws_one_bernoulli_per_module_per_forward_and_trains_only_the_successor():
    predecessor = no_dropout(tiny_classifier("bert", num_layers=4))
    model = TheseusClassifier(predecessor, 2).train()
    model.replace_prob = 0.5
    b = inputs(4)
    calls = []
    for i, layer in enumerate(model.successor):
        layer.register_forward_hook(lambda module, args, out, i=i: calls.append(i))
    torch.manual_seed(0)
    draws = []
    for _ in range(40):
        calls.clear()
        model(b.input_ids, None, b.schedule)
        draws.append(tuple(calls))
    assert set(draws) == {(), (0,), (1,), (0, 1)}        # each module on its own, once per forward
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("successor.") for n in trainable)
    model.replace_prob = 0.0                              # no successor ran: zero gradients, not none
    model(b.input_ids, None, b.schedule).sum().backward()
    assert all(p.grad is not None and not p.grad.any() for p in model.successor.parameters())


def test_a_theseus_run_trains_a_successor_with_half_the_layers_and_its_flops(tmp_path):
    from tests.conftest import tokenized_synth_nli

    root = tokenized_synth_nli(tmp_path, train_size=16)
    record = run_experiment(preset="t", task_name="synth-nli", tokenized=root / "tok.npz",
                            tokenized_meta=root / "tok.json", backbone=BACKBONE, method="theseus", variant="default",
                            artifacts=make_artifacts(root, {"full_model": {"kind": "checkpoint", "method": "full",
                                                                           "variant": "default", "seed": 1}}),
                            train_config=ONE_STEP, seed=1, reference_layers=2, out_json=root / "run.json",
                            checkpoint=root / "theseus.pt", device="cpu", progress=False)
    assert record["num_layers"] == 2 and record["theseus"]["successor_layers"] == 1   # backbone, successor
    saved = torch.load(root / "theseus.pt", weights_only=True)
    assert any(".layer.0." in k for k in saved) and not any(".layer.1." in k for k in saved)
    # exactly the successor's FLOPs (one of the two layers, every token through it) on the test lengths
    lengths = load_encoded(root / "tok.npz")["test"].lengths
    one, two = ModelDims(32, 2, 64, 1, 3), ModelDims(32, 2, 64, 2, 3)
    assert record["flops"]["method_per_instance"] == pytest.approx(np.mean([full_flops(int(n), one) for n in lengths]))
    assert record["flops"]["full_per_instance"] == pytest.approx(np.mean([full_flops(int(n), two) for n in lengths]))
    assert record["speedup"]["flops_vs_own_full"] == pytest.approx(
        sum(full_flops(int(n), two) for n in lengths) / sum(full_flops(int(n), one) for n in lengths))
    assert record["speedup"]["elue_vs_own_full"] == pytest.approx(
        sum(elue_protocol_flops(int(n), 2, two) for n in lengths) / sum(elue_protocol_flops(int(n), 1, two) for n in lengths))
    assert record["history"][-1]["step"] == 1
