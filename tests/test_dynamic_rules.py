"""Exit rules on hand-made logits with known exit layers (earlyexit/dynamic/exit_rules.py), driven through the
real batched runner by a stub model whose layers do nothing and whose exits replay given logits."""

import math

import pytest
import torch
from torch import nn

from earlyexit.dynamic.exit_rules import EntropyRule, NeverExit, NormalizedEntropyRule, PatienceRule, entropy
from earlyexit.models.multi_exit import MultiExitClassifier
from tests.conftest import tiny_classifier


class _Replay(nn.Module):
    """Exit head returning fixed logits per row, found by the row's id (carried in the hidden state)."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table              # [rows, C]

    def forward(self, hidden, mask):
        return self.table[hidden[:, 0, 0].round().long()]


def replay_model(per_layer_logits: torch.Tensor) -> MultiExitClassifier:
    """A MultiExitClassifier whose embeddings give each row its id and whose layers are identities, so
    exit l answers per_layer_logits[l][row]; layers: [L, rows, C]."""
    layers, rows, classes = per_layer_logits.shape
    model = MultiExitClassifier(tiny_classifier(num_layers=layers, num_labels=classes), "shared-pooler")
    model.exits = nn.ModuleList(_Replay(per_layer_logits[l]) for l in range(layers))

    class Identity(nn.Module):
        def forward(self, h, mask):
            return h

    model.layers = nn.ModuleList(Identity() for _ in range(layers))
    model.embed = lambda ids, types, mask: (ids[:, :, None].float().expand(-1, -1, 4),
                                            torch.zeros(ids.shape[0], 1, 1, ids.shape[1]))
    return model.eval()


def run(logits, rule):
    rows = logits.shape[1]
    ids = torch.arange(rows)[:, None].expand(rows, 3).contiguous()
    return replay_model(logits).early_exit(ids, None, torch.ones_like(ids), rule)


CONFIDENT, UNSURE = torch.tensor([4.0, -4.0]), torch.tensor([0.1, 0.0])


def test_entropy_rule_exits_at_the_first_layer_below_the_threshold():
    # row 0 confident at layer 1, row 1 from layer 3, row 2 never (answers at the last layer, 4)
    logits = torch.stack([torch.stack([CONFIDENT, UNSURE, UNSURE]), torch.stack([UNSURE, UNSURE, UNSURE]),
                          torch.stack([UNSURE, CONFIDENT, UNSURE]), torch.stack([CONFIDENT, CONFIDENT, UNSURE])])
    h_confident = float(entropy(CONFIDENT[None])[0])
    result = run(logits, EntropyRule(h_confident + 1e-3))
    assert result.exit_layers.tolist() == [1, 3, 4]
    assert torch.equal(result.logits, torch.stack([CONFIDENT, CONFIDENT, UNSURE]))
    # strict: H < S; at S equal to the confident entropy nobody leaves early
    assert run(logits, EntropyRule(h_confident)).exit_layers.tolist() == [4, 4, 4]


def test_entropy_threshold_zero_and_never_exit_give_the_last_layer():
    logits = torch.randn(5, 7, 3) * 10
    for rule in (EntropyRule(0.0), NormalizedEntropyRule(0.0), PatienceRule(0), NeverExit()):
        result = run(logits, rule)
        assert result.exit_layers.tolist() == [5] * 7
        assert torch.equal(result.logits, logits[-1])


def test_normalised_entropy_divides_by_log_classes():
    # uniform over 3 classes: H = ln 3, u = 1; a speed above 1 exits it at once, below never
    uniform = torch.zeros(3, 2, 3)
    assert run(uniform, NormalizedEntropyRule(1.0 + 1e-6)).exit_layers.tolist() == [1, 1]
    assert run(uniform, NormalizedEntropyRule(1.0 - 1e-6)).exit_layers.tolist() == [3, 3]
    p = torch.tensor([[0.7, 0.2, 0.1]]).log()
    u = float(-(p.exp() * p).sum() / math.log(3))
    layer = torch.stack([torch.zeros(1, 3), p, p])
    assert run(layer, NormalizedEntropyRule(u + 1e-4)).exit_layers.tolist() == [2]


def test_patience_counts_consecutive_agreements():
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0])
    # row 0: a a a ... -> agreements at layers 2, 3 -> patience 2 exits at 3
    # row 1: a b b b a b -> counts 0,0,1,2,0,0 -> patience 2 exits at layer 4
    # row 2: a b a b a b -> never agrees -> last layer (6)
    seq = [[a, a, a, a, a, a], [a, b, b, b, a, b], [a, b, a, b, a, b]]
    logits = torch.stack([torch.stack([seq[r][l] for r in range(3)]) for l in range(6)])
    assert run(logits, PatienceRule(2)).exit_layers.tolist() == [3, 4, 6]
    assert run(logits, PatienceRule(1)).exit_layers.tolist() == [2, 3, 6]


def test_patience_regression_uses_the_difference_threshold():
    values = torch.tensor([[1.0, 3.0], [1.5, 1.0], [1.6, 3.0], [1.65, 1.0], [4.0, 3.0]])[:, :, None]  # [L=5, rows=2, 1]
    assert run(values, PatienceRule(2, regression_threshold=0.2)).exit_layers.tolist() == [4, 5]
    assert run(values, PatienceRule(1, regression_threshold=0.6)).exit_layers.tolist() == [2, 5]
    assert run(values, PatienceRule(1, regression_threshold=0.0)).exit_layers.tolist() == [5, 5]   # spec B12


def test_entropy_rules_refuse_regression():
    for rule in (EntropyRule(0.5), NormalizedEntropyRule(0.5)):
        with pytest.raises(ValueError, match="regression"):
            run(torch.zeros(3, 2, 1), rule)


def _entropy_in_decimal(row: list[float]) -> float:
    """The entropy of softmax(row) with 50 significant digits (the reference)."""
    from decimal import Decimal, localcontext

    with localcontext() as context:
        context.prec = 50
        z = [Decimal(x) for x in row]
        top = max(z)
        weights = [(x - top).exp() for x in z]
        total = sum(weights)
        return float(total.ln() - sum(w * (x - top) for w, x in zip(weights, z)) / total)


def test_entropy_rules_decide_on_the_float64_entropy_even_at_the_boundary():
    """The entropy rules compute the entropy on the host in float64 from the logits (no device op
    after a layer, issue 18): every decision equals entropy < S and entropy / ln C < speed with the
    entropy taken in float64, thresholds a hair (1e-10) off the rows' own entropies included. There
    the fp32 entropy (the device's, `entropy`) decides some rows the other way, so the test tells
    the two apart."""
    from earlyexit.dynamic.exit_rules import LayerView, host_entropies

    torch.manual_seed(0)
    for classes in (2, 3):
        logits = torch.randn(400, classes) * 3
        exact = torch.tensor([_entropy_in_decimal(row) for row in logits.tolist()], dtype=torch.float64)
        assert torch.allclose(torch.tensor(host_entropies(logits), dtype=torch.float64), exact, rtol=1e-14, atol=0)
        view = LayerView(1, 2, logits, torch.zeros(400, 1, 4), torch.zeros(400, 1, 1, 1))
        fp32_differs = False
        for scale in (1.0, 1 / math.log(classes)):
            rule = EntropyRule if scale == 1.0 else NormalizedEntropyRule
            score = exact * scale
            near = score[:50]
            for s in [*(near * (1 + 1e-10)).tolist(), *(near * (1 - 1e-10)).tolist(), 0.0, 0.3, float(score.median())]:
                assert rule(s).decide(view) == (score < s).tolist()
                fp32_differs |= (entropy(logits) * scale < s).tolist() != (score < s).tolist()
        assert fp32_differs


def test_two_class_entropies_equal_the_general_formula_bit_for_bit():
    """Two classes take a shorter formula (batch 32 costs a few µs on the host): the same floats as the
    general one, so a decision does not depend on which ran."""
    from earlyexit.dynamic.exit_rules import _entropy_of_row, _two_class_entropies

    torch.manual_seed(0)
    scales = torch.logspace(-8, 2, 20000)[:, None]
    rows = (torch.randn(20000, 2) * scales).tolist() + [[1.0, 1.0], [50.0, -50.0], [-3.0, 7.0], [0.0, -0.0]]
    assert _two_class_entropies(rows) == [_entropy_of_row(row) for row in rows]


def test_entropy_rules_never_exit_at_zero_and_not_on_nan():
    from earlyexit.dynamic.exit_rules import LayerView, host_entropies

    logits = torch.tensor([[60.0, -60.0, -60.0], [0.0, 0.0, 0.0], [float("nan"), 1.0, 0.0], [30.0, 30.0, 2.0]])
    h = host_entropies(logits)
    # a confident row's tiny entropy to full relative precision (log(1 + r) would give 0 here)
    assert h[0] > 0.0 and h[0] == pytest.approx(_entropy_in_decimal([60.0, -60.0, -60.0]), rel=1e-14)
    assert h[1] == pytest.approx(math.log(3), abs=1e-15) and math.isnan(h[2])
    assert h[3] == pytest.approx(_entropy_in_decimal([30.0, 30.0, 2.0]), rel=1e-14)     # a tie at the top
    view = LayerView(1, 2, logits[:3], torch.zeros(3, 1, 4), torch.zeros(3, 1, 1, 1))
    assert EntropyRule(0.0).decide(view) == [False, False, False]
    assert NormalizedEntropyRule(0.0).decide(view) == [False, False, False]
    assert EntropyRule(2.0).decide(view) == [True, True, False]


def _sigmoid_in_decimal(z: float) -> float:
    from decimal import Decimal, localcontext

    with localcontext() as context:
        context.prec = 50
        return float(1 / (1 + (-Decimal(z)).exp()))


def test_host_sigmoids_are_the_exact_logistic_without_overflow():
    """The learned rules' exit probability, on the host in float64 (`host_sigmoids`): against a
    50-digit reference, on a column or a vector; scores of ±1000 (exp would overflow either way
    round in a one-form formula) give 1 and 0; NaN stays NaN."""
    from earlyexit.dynamic.exit_rules import host_sigmoids

    z = torch.tensor([0.0, 2.0, -2.0, 17.5, -17.5, 1e-9, -30.0], dtype=torch.float32)
    exact = [_sigmoid_in_decimal(v) for v in z.tolist()]
    for scores in (z, z[:, None]):
        assert host_sigmoids(scores) == pytest.approx(exact, rel=1e-15, abs=0)
    extremes = host_sigmoids(torch.tensor([1000.0, -1000.0, float("nan")]))
    assert extremes[:2] == [1.0, 0.0] and math.isnan(extremes[2])


@pytest.mark.parametrize("name", ["consistentee", "berxit"])
def test_learned_rules_decide_on_the_float64_sigmoid_of_their_score(name):
    """PolicyRule (P(exit) > threshold) and LTERule (u < τ) compare the float64 sigmoid of the
    score their policy or exit module computes on the device, with thresholds 1e-10 either side of
    a row's own probability; real early exit dispatches no sigmoid."""
    from earlyexit.dynamic.exit_rules import LayerView, host_sigmoids
    from earlyexit.models.berxit import BERxiTClassifier, LTERule
    from earlyexit.models.consistentee import ConsistentEEClassifier, PolicyRule
    from tests.test_dynamic_model import _aten_ops, batch

    torch.manual_seed(3)
    hf = tiny_classifier(num_layers=4, num_labels=3)
    if name == "consistentee":
        model, make, leaves = ConsistentEEClassifier(hf, policy_width=8).eval(), PolicyRule, lambda p, t: p > t
        score_of = lambda pooled: model.policies.layers[0].lean(logit=True)(pooled)
    else:
        model, make, leaves = BERxiTClassifier(hf).eval(), LTERule, lambda u, t: u < t
        score_of = lambda pooled: model.lte.lean(logit=True)(pooled)
    ids, types, real = batch("bert")
    with torch.no_grad():
        h, mask = model.embed(ids, types, real)
        h = model.layers[0](h, mask)
        probabilities = host_sigmoids(score_of(model.exits[0].pooler(h)))
        view = LayerView(1, model.num_layers, model.exits[0](h, mask), h, mask)
        for middle in sorted(probabilities)[2:-2]:
            for threshold in (middle - 1e-10, middle + 1e-10):
                rule = make(model, threshold)
                rule.start(len(ids), model.num_layers, ids.device)
                decided = rule.decide(view)
                assert decided == [leaves(p, threshold) for p in probabilities]
                assert 0 < sum(decided) < len(ids)
    ops = _aten_ops(lambda: model.early_exit(ids, types, real, make(model, float(sorted(probabilities)[4]))))
    assert "aten.sigmoid" not in ops
