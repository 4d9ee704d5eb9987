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
