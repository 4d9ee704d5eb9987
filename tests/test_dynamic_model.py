"""The multi-exit classifier (earlyexit/models/multi_exit.py): batched early exit equals one-by-one,
layers see only the rows still running, the last exit equals the plain model, and the cost of an
instance exiting at layer k is the k-layer model's."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from earlyexit.dynamic.exit_rules import EntropyRule, NeverExit, NormalizedEntropyRule, PatienceRule, entropy
from earlyexit.cost.flops import (ModelDims, dynamic_exit_cost, elue_protocol_flops, exit_layer_flops, full_flops,
                             speedup_record)
from earlyexit.models.multi_exit import MultiExitClassifier
from tests.conftest import tiny_classifier

LENGTHS = [11, 7, 4, 9, 3, 11, 6, 2]


def batch(kind: str):
    torch.manual_seed(3)
    width = max(LENGTHS)
    ids = torch.randint(5, 120, (len(LENGTHS), width))
    real = (torch.arange(width)[None] < torch.tensor(LENGTHS)[:, None]).long()
    ids[real == 0] = 1 if kind == "roberta" else 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    return ids, types * real, real


def model(kind, heads, num_labels=3, seed=0):
    return MultiExitClassifier(tiny_classifier(kind, num_layers=5, num_labels=num_labels, seed=seed), heads).eval()


def mixed_rules(m, ids, types, real):
    """Thresholds at the median of the rows' entropies, so exit layers differ between rows."""
    with torch.no_grad():
        logits = m(ids, types, real).logits
    h = entropy(logits[1])
    u = h / np.log(logits[1].shape[-1])
    return [EntropyRule(float(h.median()) + 1e-6), NormalizedEntropyRule(float(u.median()) + 1e-6), PatienceRule(1),
            PatienceRule(2)]


@pytest.mark.parametrize("kind", ["bert", "roberta"])
@pytest.mark.parametrize("heads", ["own-pooler", "shared-pooler", "attention"])
def test_batched_early_exit_equals_one_by_one(kind, heads):
    m = model(kind, heads)
    ids, types, real = batch(kind)
    layers_seen = []
    spread = set()
    for rule in mixed_rules(m, ids, types, real):
        hooks = [layer.register_forward_hook(lambda mod, args, out, i=i: layers_seen.append((i, out.shape[0])))
                 for i, layer in enumerate(m.layers, start=1)]
        together = m.early_exit(ids, types, real, rule)
        for h in hooks:
            h.remove()
        # layer k ran on exactly the rows that had not left before it
        for k in range(1, m.num_layers + 1):
            rows = [n for i, n in layers_seen if i == k]
            alive = int((together.exit_layers >= k).sum())
            assert rows == ([alive] if alive else [])
        layers_seen.clear()
        spread |= set(together.exit_layers.tolist())
        for i, n in enumerate(LENGTHS):
            alone = m.early_exit(ids[i:i + 1, :n], types[i:i + 1, :n], real[i:i + 1, :n], rule)
            assert alone.exit_layers[0] == together.exit_layers[i]
            torch.testing.assert_close(alone.logits[0], together.logits[i], atol=1e-5, rtol=1e-5)
    assert len(spread) >= 2, "the rules should give several exit layers (else the test proves little)"


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_never_exit_is_the_last_layer_and_deebert_final_head_is_the_plain_model(kind):
    m = model(kind, "own-pooler")
    ids, types, real = batch(kind)
    result = m.early_exit(ids, types, real, NeverExit())
    assert result.exit_layers.tolist() == [m.num_layers] * len(LENGTHS)
    with torch.no_grad():
        every = m(ids, types, real).logits
        plain = m.hf(input_ids=ids, token_type_ids=types, attention_mask=real).logits
    torch.testing.assert_close(result.logits, every[-1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(every[-1], plain, atol=1e-5, rtol=1e-5)


def test_regression_heads_give_one_output_and_patience_runs():
    m = model("bert", "shared-pooler", num_labels=1)
    ids, types, real = batch("bert")
    result = m.early_exit(ids, types, real, PatienceRule(1, regression_threshold=10.0))
    assert result.logits.shape == (len(LENGTHS), 1) and result.exit_layers.tolist() == [2] * len(LENGTHS)


def test_pabee_heads_share_one_pooler_and_deebert_highways_copy_it():
    pabee = model("bert", "shared-pooler")
    assert all(h.pooler is pabee.base.pooler for h in pabee.exits)
    deebert = model("bert", "own-pooler")
    first = deebert.exits[0].pooler
    assert first is not deebert.base.pooler
    torch.testing.assert_close(first.dense.weight, deebert.base.pooler.dense.weight)


DIMS = ModelDims(hidden=64, heads=4, intermediate=128, num_layers=6, num_labels=2)


@pytest.mark.parametrize("k", range(1, 7))
def test_flops_of_an_instance_exiting_at_k_equal_the_k_layer_model(k):
    k_layer = dataclasses.replace(DIMS, num_layers=k)
    for n in (1, 5, 37):
        assert exit_layer_flops(n, k, DIMS) == full_flops(n, k_layer)
        assert elue_protocol_flops(n, k, DIMS) == elue_protocol_flops(n, k_layer.num_layers, k_layer)


def test_every_instance_at_the_last_layer_is_exactly_one_times_the_own_full_model():
    tokens = np.array([3, 17, 64, 9])
    cost = dynamic_exit_cost(tokens, np.full(4, DIMS.num_layers), DIMS)
    speed = speedup_record(cost.tokens, cost.method_flops, cost.elue_depth, DIMS, reference_layers=12)["speedup"]
    assert speed["flops_vs_own_full"] == 1.0 and speed["elue_vs_own_full"] == 1.0
    assert speed["flops"] == pytest.approx(2.0, rel=0.01)     # 6 of the reference's 12 layers (plus one head)
    half = dynamic_exit_cost(tokens, np.full(4, 3), DIMS)
    ratio = speedup_record(half.tokens, half.method_flops, half.elue_depth, DIMS, 12)["speedup"]["elue_vs_own_full"]
    expected = sum(elue_protocol_flops(n, 6, DIMS) for n in tokens) / sum(elue_protocol_flops(n, 3, DIMS) for n in tokens)
    assert ratio == pytest.approx(expected)
    with pytest.raises(ValueError, match="1..6"):
        dynamic_exit_cost(tokens, np.array([0, 1, 2, 7]), DIMS)


@pytest.mark.parametrize("heads", ["own-pooler", "shared-pooler", "attention"])
def test_early_exit_runs_under_bf16_autocast(heads):
    """The GPU path's autocast (bf16 layers, fp32 mask), exercised on CPU."""
    m = model("bert", heads)
    ids, types, real = batch("bert")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = m.early_exit(ids, types, real, PatienceRule(1))
        logits = m(ids, types, real).logits
    assert result.logits.shape == (len(LENGTHS), 3) and torch.isfinite(result.logits.float()).all()
    assert result.exit_layers.min() >= 2                  # patience 1: the earliest exit is layer 2
    assert len(logits) == m.num_layers


def test_every_dynamic_method_names_a_known_head_shape():
    """Heads are named by shape; a multi-exit method picks one (DynamicMethod.heads)."""
    from earlyexit.methods import METHODS
    from earlyexit.methods._dynamic import DynamicMethod
    from earlyexit.models.multi_exit import EXIT_HEADS

    shapes = {m.name: m.heads for m in METHODS.values() if isinstance(m, DynamicMethod)}
    assert shapes and all(shape in EXIT_HEADS for shape in shapes.values()), shapes


@pytest.mark.parametrize("training", [False, True])
def test_fastbert_head_equals_multihead_attention_at_position_zero(training, padded_batch):
    """The head writes nn.MultiheadAttention's forward out (cheaper on one row); with dropout off it
    gives what the module gives, padding masked, in eval and in train mode."""
    from earlyexit.models.multi_exit import AttentionHead, additive_mask

    ids, real, _ = padded_batch
    torch.manual_seed(0)
    head = AttentionHead(hidden=32, num_labels=3, width=16, heads=2, dropout=0.0).train(training)
    hidden = torch.randn(*ids.shape, 32)
    mask = additive_mask(real.long(), hidden.dtype)
    x = torch.tanh(head.reduce(hidden))
    attended, _ = head.attention(x[:, :1], x, x, key_padding_mask=~real, need_weights=False)
    expected = head.out(torch.tanh(head.dense(attended[:, 0])))
    torch.testing.assert_close(head(hidden, mask), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("one_row", [True, False])
def test_fastbert_head_packed_path_equals_the_module_path(one_row, padded_batch):
    """In CPU inference the head's two products over every position run on the backbone's packed
    oneDNN path (the tanh inside the GEMM; issue 18), one row with matrix-vector products after them:
    within 1e-5 of the module path in fp32, its `lean` function alike; within 5e-2 in bf16 (weights in
    bf16, or fp32 weights under bf16 autocast). The backbone's switch turns the packed path off."""
    from earlyexit.models.fast_linear import _packable
    from earlyexit.models.multi_exit import AttentionHead, additive_mask

    ids, real, _ = padded_batch
    ids, real = (ids[:1], real[:1]) if one_row else (ids, real)
    torch.manual_seed(0)
    head = AttentionHead(hidden=32, num_labels=3, width=16, heads=2, dropout=0.0).eval()
    hidden = torch.randn(*ids.shape, 32)
    mask = additive_mask(real.long(), hidden.dtype)
    expected = head(hidden, mask)                        # autograd on: the module path
    assert head._packed_products() is None
    with torch.no_grad():
        assert head._packed_products()[0] == torch.float32
        torch.testing.assert_close(head(hidden, mask), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(head.lean()(hidden, mask), expected, atol=1e-5, rtol=0)
        if _packable(torch.bfloat16):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                assert head._packed_products()[0] == torch.bfloat16
                torch.testing.assert_close(head.lean()(hidden, mask).float(), expected, atol=5e-2, rtol=0)
            in_bf16 = copy.deepcopy(head).to(torch.bfloat16)
            assert in_bf16._packed_products()[0] == torch.bfloat16
            torch.testing.assert_close(in_bf16.lean()(hidden.bfloat16(), mask.bfloat16()).float(), expected,
                                       atol=5e-2, rtol=0)
        head.reduce.fast = False
        assert head._packed_products() is None
        torch.testing.assert_close(head.lean()(hidden, mask), expected, atol=1e-5, rtol=0)


def test_fastbert_one_row_head_folds_the_attention_and_follows_weight_updates():
    """On one row in CPU inference the head's attention with its one query is folded
    (`fold_one_query`: keys and the value, output and dense products folded into cached matrices),
    so one product over every position runs instead of two, and in fp32 everything after it is one
    compiled loop (`one_row_kernels.attention_tail`: no further arithmetic op); padding stays masked. Within
    1e-5 of the module path, and folded again after an in-place weight update."""
    from earlyexit.models.multi_exit import AttentionHead, additive_mask

    torch.manual_seed(0)
    head = AttentionHead(hidden=32, num_labels=3, width=16, heads=2, dropout=0.0).eval()
    real = torch.arange(11)[None] < 6                         # positions 6..10 are padding
    hidden = torch.randn(1, 11, 32)
    hidden[:, 6:] *= 50.0                                     # padding that would move the answer if it were read
    mask = additive_mask(real.long(), hidden.dtype)
    two_rows = torch.cat([hidden, torch.randn(1, 11, 32)]), torch.cat([mask, mask])
    for update in (False, True):
        if update:
            with torch.no_grad():
                head.dense.weight.mul_(-2.0)
                head.attention.in_proj_bias.add_(0.5)
        expected = head(hidden, mask)                         # autograd on: the module path
        with torch.no_grad():
            one_row = head.lean(rows=1)
            ops = _aten_ops(lambda: one_row(hidden, mask))
            torch.testing.assert_close(one_row(hidden, mask), expected, atol=1e-5, rtol=0)
            torch.testing.assert_close(head.lean()(hidden, mask), expected, atol=1e-5, rtol=0)
        assert _without_numpy_views(ops) == ["aten.select", "mkldnn._linear_pointwise", "aten.reshape"]
        assert _aten_ops(lambda: head.lean()(*two_rows)).count("mkldnn._linear_pointwise") == 2
    unpadded = torch.randn(1, 11, 32)
    with torch.no_grad():
        assert not torch.allclose(head.lean(rows=1)(unpadded, torch.zeros_like(mask)), head.lean(rows=1)(unpadded, mask))


def test_a_learned_rule_reuses_the_exit_heads_pooled_vector_only_for_the_same_states():
    from earlyexit.models.multi_exit import PooledHead

    head = PooledHead(torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh()), 8, 2, 0.1).eval()
    hidden, other = torch.randn(3, 8), torch.randn(3, 8)
    with torch.no_grad():
        head(hidden, None)
        assert head.pooled_of(hidden) is head._last[1]
        torch.testing.assert_close(head.pooled_of(other), head.pooler(other))
    head(hidden, None)                      # with autograd nothing is kept
    assert head._last is None


def test_a_pooled_heads_one_row_function_keeps_autograd_for_states_that_need_it():
    """The compiled one-row loop reads numpy views, which autograd cannot follow: states that
    require grad take the torch ops, and the gradient reaches them."""
    from earlyexit.models.multi_exit import PooledHead

    model = MultiExitClassifier(tiny_classifier("bert", 2), "own-pooler").eval()
    head = model.exits[0]
    assert isinstance(head, PooledHead)
    hidden = torch.randn(1, 5, model.hf.config.hidden_size, requires_grad=True)
    logits = head.lean()(hidden, None)
    logits.sum().backward()
    assert hidden.grad is not None and hidden.grad[0, 0].abs().sum() > 0
    with torch.no_grad():
        torch.testing.assert_close(head.lean()(hidden.detach(), None), logits.detach(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_pooled_heads_inference_shortcut_equals_the_module_path(kind, padded_batch):
    """In inference a pooled exit head runs its pooler's and classifier's ops without the module
    calls (batch-1 cost): the same numbers as the module path, bit for bit on a batch, within 1e-6
    on one row in fp32 (one compiled loop, `one_row_kernels.pooled_row`: no arithmetic op), and the pooled
    vector is kept for a learned rule; a pooler of another form keeps the module path."""
    from earlyexit.models.multi_exit import PooledHead, _first_token_tanh

    ids, _, _ = padded_batch
    model = MultiExitClassifier(tiny_classifier(kind, 2), "own-pooler").eval()
    head = model.exits[0]
    assert isinstance(head, PooledHead) and _first_token_tanh(head.pooler) is not None
    for rows in (ids.shape[0], 1):          # one row takes matrix-vector products
        hidden = torch.randn(rows, ids.shape[1], model.hf.config.hidden_size)
        with torch.no_grad():
            shortcut = head(hidden, None)
            reused = head.pooled_of(hidden)                 # the kept vector (one row: [H], as the rules read it)
            assert reused.shape == ((rows, hidden.shape[-1]) if rows > 1 else (hidden.shape[-1],))
            assert reused is head._last[1]
            expected = head.classifier(head.dropout(head.pooler(hidden)))
            tolerance = 0 if rows > 1 else 1e-6
            assert shortcut.shape == expected.shape
            torch.testing.assert_close(shortcut, expected, rtol=0, atol=tolerance)
            torch.testing.assert_close(reused.view(rows, -1), head.pooler(hidden), rtol=0, atol=tolerance)
            lean = head.lean()                                          # what the runner calls
            torch.testing.assert_close(lean(hidden, None), expected, rtol=0, atol=tolerance)
            if rows == 1:                                               # the first token's selects only
                assert _without_numpy_views(_aten_ops(lambda: lean(hidden, None))) == ["aten.select"] * 2
    assert _first_token_tanh(head.pooler.train()) is None          # a pooler in training mode: its modules
    other = PooledHead(torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh()), 8, 2, 0.1).eval()
    assert _first_token_tanh(other.pooler) is None


def _aten_ops(run) -> list[str]:
    """The ATen ops `run()` dispatches, in order."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    with torch.inference_mode(), Record() as record:
        run()
    return record.ops


def _without_numpy_views(ops: list[str]) -> list[str]:
    """`ops` less what handing tensors to and from the compiled one-row heads dispatches (numpy
    views of weights, states and results: no arithmetic, no copy). `tolist()`'s transfer
    (resolve_conj, resolve_neg without the detach before them) stays."""
    kept, i = [], 0
    as_numpy = ["aten.detach", "aten.to", "aten.resolve_conj", "aten.resolve_neg"]      # Tensor.numpy()
    while i < len(ops):
        if ops[i:i + 4] == as_numpy:
            i += 4
        elif ops[i] in ("aten.detach", "aten.lift_fresh"):                            # .detach(), from_numpy
            i += 1
        else:
            kept.append(ops[i])
            i += 1
    return kept


@pytest.mark.parametrize("heads", ["own-pooler", "shared-pooler", "attention"])
@pytest.mark.parametrize("rows", [1, len(LENGTHS)])
def test_while_nobody_leaves_the_runner_adds_no_op_and_a_rule_only_its_score(heads, rows):
    """Issue 18: at batch 1 every op after a layer costs tens of µs. Until a row leaves, real early exit
    dispatches exactly the ops of every layer and every exit head; a rule adds only the ops of its
    per-row score (PABEE: one argmax per layer; its counters and every comparison live on the host; the
    entropy rules none, their score is computed on the host)."""
    m = model("bert", heads)
    ids, types, real = (t[:rows] for t in batch("bert"))

    def ops_of(run):
        return _without_numpy_views(_aten_ops(run))

    every_exit = ops_of(lambda: m(ids, types, real))
    assert ops_of(lambda: m.early_exit(ids, types, real, NeverExit())) == every_exit
    patience = ops_of(lambda: m.early_exit(ids, types, real, PatienceRule(m.num_layers)))
    transfer = ["aten.resolve_conj", "aten.resolve_neg"]            # what `tolist()` dispatches
    assert len(patience) == len(every_exit) + 3 * (m.num_layers - 1)
    assert [op for op in patience if op not in every_exit] == (["aten.argmax", *transfer] * (m.num_layers - 1))
    # the entropy rules bring the logits over and compute on the host: the transfer alone
    for rule in (EntropyRule(0.0), NormalizedEntropyRule(0.0)):
        ops = ops_of(lambda: m.early_exit(ids, types, real, rule))
        assert len(ops) == len(every_exit) + 2 * (m.num_layers - 1)
        assert [op for op in ops if op not in every_exit] == transfer * (m.num_layers - 1)
