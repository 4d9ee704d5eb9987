"""BERxiT's learning-to-exit pieces on hand-made numbers: targets, loss, the alternating objective
and the exit rule (never exit at τ = -1, the final head always answers at L)."""

import pytest
import torch

from earlyexit.models.berxit import (NEVER_EXIT, LearningToExit, alternate_lte_loss, exit_layers, exit_losses,
                                     lte_loss, lte_targets, parse_thresholds)


def test_lte_targets_classification_and_regression():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [0.0, 3.0]]])     # predicts 0, 1, 1
    assert lte_targets(logits, torch.tensor([1]), regression=False).tolist() == [[1.0, 0.0, 0.0]]
    scores = torch.tensor([[[2.0], [3.5], [3.0]]])
    got = lte_targets(scores, torch.tensor([3.0]), regression=True)
    assert got.tolist()[0] == pytest.approx([abs(torch.tanh(torch.tensor(-1.0)).item()),
                                             torch.tanh(torch.tensor(0.5)).item(), 0.0])
    assert not got.requires_grad


def test_lte_module_is_one_shared_linear_with_a_sigmoid():
    lte = LearningToExit(8)
    assert sum(p.numel() for p in lte.parameters()) == 9
    u = lte(torch.randn(3, 4, 8))
    assert u.shape == (3, 4) and ((u > 0) & (u < 1)).all()
    assert lte_loss(torch.tensor([[0.5, 1.0]]), torch.tensor([[1.0, 1.0]])).item() == pytest.approx(0.125)


def test_alternating_objective():
    per_exit = torch.tensor([1.0, 2.0, 4.0])     # two highways, then the final head
    assert alternate_lte_loss(0, per_exit, torch.tensor(0.5)).item() == pytest.approx(4.5)
    assert alternate_lte_loss(1, per_exit, torch.tensor(0.5)).item() == pytest.approx(3.5)
    assert alternate_lte_loss(3, per_exit, torch.tensor(0.5), odd_step_includes_final=True).item() == pytest.approx(7.5)
    logits = torch.tensor([[[5.0, -5.0], [0.0, 0.0]], [[5.0, -5.0], [0.0, 0.0]]])
    losses = exit_losses(logits, torch.tensor([0, 0]), regression=False)
    assert losses[0].item() < 1e-3 and losses[1].item() == pytest.approx(0.6931, abs=1e-4)
    assert exit_losses(torch.tensor([[[1.0], [3.0]]]), torch.tensor([2.0]), regression=True).tolist() == [1.0, 1.0]


def test_exit_rule_first_confident_layer_before_the_last():
    u = torch.tensor([[0.3, 0.05, 0.01, 0.9],
                      [0.2, 0.2, 0.2, 0.0],      # never below 0.1 before L: the final head answers
                      [0.01, 0.9, 0.9, 0.9]])
    assert exit_layers(u, 0.1).tolist() == [2, 4, 1]
    assert exit_layers(u, NEVER_EXIT).tolist() == [4, 4, 4]
    assert exit_layers(u, 1.0).tolist() == [1, 1, 1]
    # per-layer groups "v,n;v,n": layer 1 at 0.0, layers 2-3 at 0.25
    assert parse_thresholds("0.0,1;0.25,2", 4) == [0.0, 0.25, 0.25]
    assert exit_layers(u, "0.0,1;0.25,2").tolist() == [2, 2, 4]


def one_by_one(model, ids, real, lengths, make_rule):
    """Each row alone (its own length, no padding) through the runner."""
    rows = [model.early_exit(ids[i:i + 1, :n], None, real[i:i + 1, :n].long(), make_rule()) for i, n in enumerate(lengths.tolist())]
    return torch.cat([r.logits for r in rows]), [int(r.exit_layers[0]) for r in rows]


def test_berxit_model_exits_where_its_lte_says_batched_as_one_by_one(padded_batch):
    from earlyexit.models.berxit import BERxiTClassifier, LTERule
    from tests.conftest import tiny_classifier

    model = BERxiTClassifier(tiny_classifier(num_layers=4, num_labels=3)).eval()
    ids, real, lengths = padded_batch
    mask = real.long()
    with torch.no_grad():
        logits, u = model.lte_forward(ids, None, mask)
        plain = torch.stack(model(ids, None, mask).logits, dim=1)
    assert torch.allclose(logits, plain, atol=1e-6)       # the LTE path runs the same exits
    first = u[:, 0].sort().values
    tau = float(first[:2].mean())                           # only one row leaves at layer 1
    expected = exit_layers(u, tau)
    assert len(set(expected.tolist())) > 1
    batched = model.early_exit(ids, None, mask, LTERule(model, tau))
    assert batched.exit_layers.tolist() == expected.tolist()
    assert torch.allclose(batched.logits, logits[torch.arange(3), expected - 1], atol=1e-5)
    alone, alone_exits = one_by_one(model, ids, real, lengths, lambda: LTERule(model, tau))
    assert alone_exits == expected.tolist() and torch.allclose(alone, batched.logits, atol=1e-5)
    never = model.early_exit(ids, None, mask, LTERule(model, NEVER_EXIT))
    assert never.exit_layers.tolist() == [4, 4, 4] and torch.allclose(never.logits, plain[:, -1], atol=1e-5)


def test_berxit_training_loss_alternates_and_trains_the_lte(padded_batch):
    from earlyexit.models.berxit import BERxiTClassifier
    from tests.conftest import tiny_classifier

    model = BERxiTClassifier(tiny_classifier(num_layers=4, num_labels=3)).train()
    ids, real, _ = padded_batch
    batch = (ids, None, real.long(), torch.tensor([0, 1, 2]))
    even = model.alternate_loss(batch, 0, regression=False)
    even.backward()
    assert model.lte.linear.weight.grad is not None and model.hf.classifier.weight.grad is not None
    assert not model.exits[0].classifier.weight.grad.any()            # highways rest on even steps
    model.zero_grad(set_to_none=True)
    model.alternate_loss(batch, 1, regression=False).backward()
    assert model.exits[0].classifier.weight.grad.any() and not model.hf.classifier.weight.grad.any()


def test_berxit_published_row_follows_the_paper_backbone():
    from earlyexit.methods import get_method

    berxit = get_method("berxit")
    assert berxit.published_row("elue_main", "default", "BERT-base") == "BERxiT w/ BERT"
    assert berxit.published_row("elue_main", "default", "ElasticBERT-12L") == "BERxiT w/ ElasticBERT"
    assert berxit.published_row("elue_main", "default", "BERT") == "BERxiT w/ BERT"
    assert berxit.published_row("elue_main", "default", "ElasticBERT-6L") == "BERxiT w/ ElasticBERT"
    assert berxit.published_row("elue_main", "default", "RoBERTa") == "BERxiT"
    assert berxit.published_row("elue_main", "default") == "BERxiT"
    assert berxit.exit_support(type("T", (), {"is_regression": True})()) is None     # tanh target: STS-B runs


def test_with_elasticbert_each_highway_starts_from_that_layers_pretrained_pooler():
    from earlyexit.models.backbones import BackboneSpec, elasticbert_layer_pooler_states, elasticbert_layer_poolers
    from earlyexit.models.berxit import BERxiTClassifier
    from tests.conftest import tiny_classifier

    # ElasticBERT keeps one pooler per layer (0-based in its keys); BERT's layout has one
    state = {f"elasticbert.encoder.pooler.{i}.dense.{p}": torch.full((32, 32) if p == "weight" else (32,), float(i))
             for i in range(6) for p in ("weight", "bias")}
    state["elasticbert.encoder.layer.0.output.dense.weight"] = torch.zeros(1)
    poolers = elasticbert_layer_pooler_states(state, num_layers=4)
    assert [float(p["dense.bias"][0]) for p in poolers] == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(RuntimeError, match=r"no pooler for layer\(s\) \[7\]"):
        elasticbert_layer_pooler_states(state, num_layers=7)
    model = BERxiTClassifier(tiny_classifier(num_layers=4, num_labels=2), poolers)
    assert [head.pooler.dense.bias[0].item() for head in model.exits[:-1]] == [0.0, 1.0, 2.0]
    assert model.last_pooler.dense.bias[0].item() == 3.0
    assert elasticbert_layer_poolers(BackboneSpec(name="r", source="random", num_layers=2)) is None
