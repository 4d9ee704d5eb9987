"""HashEE forward: equivalence with the plain backbone and with a slow reference of the definition,
freezing, padding and batching invariants, bf16 and autocast."""

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from earlyexit.models.hashee import HashEEForSequenceClassification
from earlyexit.models.schedule import build_exit_schedule
from tests.conftest import tiny_classifier

LAYERS = 4


def _pad(ids, real, pad_id):
    return torch.where(real, ids, torch.full_like(ids, pad_id))


@pytest.mark.parametrize("kind,pad_id", [("bert", 0), ("roberta", 1)])
def test_all_tokens_at_last_layer_equals_plain_backbone(kind, pad_id, padded_batch):
    ids, real, _ = padded_batch
    ids = _pad(ids, real, pad_id)
    hf = tiny_classifier(kind, LAYERS)
    reference = hf(input_ids=ids, attention_mask=real.long()).logits
    model = HashEEForSequenceClassification(hf).eval()
    exits = torch.where(real, LAYERS, 0)
    logits = model(ids, None, build_exit_schedule(exits, LAYERS))
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=0)


def test_every_token_exiting_at_k_equals_the_first_k_layers(padded_batch):
    ids, real, _ = padded_batch
    hf = tiny_classifier("bert", LAYERS)
    reference = hf.bert(input_ids=ids, output_hidden_states=True).hidden_states  # no padding: all real
    model = HashEEForSequenceClassification(hf).eval()
    _, states = model(ids, None, build_exit_schedule(torch.full_like(ids, 2), LAYERS), output_hidden_states=True)
    torch.testing.assert_close(states[-1], reference[2], atol=1e-5, rtol=0)


def test_token_exiting_at_layer_k_keeps_its_layer_k_state(padded_batch):
    ids, real, _ = padded_batch
    exits = torch.randint(1, LAYERS + 1, ids.shape)
    exits[:, 0] = LAYERS
    exits = torch.where(real, exits, 0)
    model = HashEEForSequenceClassification(tiny_classifier("bert", LAYERS)).eval()
    _, states = model(ids, None, build_exit_schedule(exits, LAYERS), output_hidden_states=True)
    for b, t in real.nonzero().tolist():
        k = int(exits[b, t])
        # frozen after layer k: every later state is exactly the layer-k state ...
        for later in range(k + 1, LAYERS + 1):
            assert torch.equal(states[later][b, t], states[k][b, t])
        # ... and layer k really updated it
        assert not torch.allclose(states[k][b, t], states[k - 1][b, t])


def test_batch_equals_one_by_one_and_padding_is_inert(padded_batch):
    ids, real, lengths = padded_batch
    exits = torch.where(real, torch.randint(1, LAYERS + 1, ids.shape), 0)
    exits[:, 0] = LAYERS
    model = HashEEForSequenceClassification(tiny_classifier("bert", LAYERS)).eval()
    batched = model(ids, None, build_exit_schedule(exits, LAYERS))
    for row, n in enumerate(lengths.tolist()):
        single = model(ids[row:row + 1, :n], None, build_exit_schedule(exits[row:row + 1, :n], LAYERS))
        torch.testing.assert_close(single[0], batched[row], atol=1e-5, rtol=0)
    # whatever sits at padding positions changes nothing
    scrambled = torch.where(real, ids, torch.randint(5, 120, ids.shape))
    torch.testing.assert_close(model(scrambled, None, build_exit_schedule(exits, LAYERS)), batched, atol=1e-6, rtol=0)


def test_gradients_reach_every_layer_and_exited_tokens_embeddings(padded_batch):
    ids, real, _ = padded_batch
    exits = torch.where(real, 1, 0)
    exits[:, 0] = LAYERS
    hf = tiny_classifier("bert", LAYERS)
    model = HashEEForSequenceClassification(hf).train()
    model(ids, None, build_exit_schedule(exits, LAYERS)).sum().backward()
    for layer in hf.bert.encoder.layer:
        assert layer.attention.self.query.weight.grad.abs().sum() > 0
    # tokens that exit at layer 1 still feed [CLS] as keys/values, so their embeddings get gradient
    exited_ids = ids[0, 1:].unique()
    assert hf.bert.embeddings.word_embeddings.weight.grad[exited_ids].abs().sum() > 0


def test_early_exit_changes_the_output():
    ids = torch.randint(5, 120, (2, 9))
    ids[:, 0] = 2
    model = HashEEForSequenceClassification(tiny_classifier("bert", LAYERS)).eval()
    full = model(ids, None, build_exit_schedule(torch.full_like(ids, LAYERS), LAYERS))
    exits = torch.ones_like(ids)
    exits[:, 0] = LAYERS
    early = model(ids, None, build_exit_schedule(exits, LAYERS))
    assert not torch.allclose(full, early)


def test_inference_in_place_equals_the_autograd_path_and_leaves_no_trace(padded_batch):
    """Without autograd the forward writes the active tokens' new states into its own state tensor
    (no per-layer copy of the frozen ones); it gives the logits of the copying path, on a batch that
    reorders tokens, packs rows and has layers with every row exact, and a second call agrees."""
    ids, real, _ = padded_batch
    exits = _random_exits(real, seed=3)
    exits[1, :3] = LAYERS   # an exact layer too (every row at the same width) where rows line up
    schedule = build_exit_schedule(exits, LAYERS)
    assert not schedule.identity and any(i is not None for i in schedule.token_index)
    model = HashEEForSequenceClassification(tiny_classifier("bert", LAYERS)).eval()
    copying = model(ids, None, schedule)                  # autograd on: the copying path
    assert copying.requires_grad
    with torch.inference_mode():
        in_place = model(ids, None, schedule)
        again = model(ids, None, schedule)
    torch.testing.assert_close(in_place, copying.detach(), atol=1e-6, rtol=0)
    assert torch.equal(in_place, again)
    # and against the slow reference of the definition (logits only: states are not kept in place)
    with torch.no_grad():
        torch.testing.assert_close(model(ids, None, schedule), _slow_hashee(model.hf, ids, None, exits, True)[0],
                                   atol=1e-5, rtol=0)


# --- an independent, slow reference of the HashEE definition -----------------------------------

def _slow_hashee(hf, ids, token_type_ids, exits, uses_pooler):
    """HashEE by its definition, in the original token order, with HF's own layer modules: every
    layer runs on every token, then a token keeps the new state only while l <= its exit layer.
    Exited tokens therefore stay keys/values with their frozen states; padding (exit 0) is masked
    as a key. Returns the logits and the states after each layer."""
    base = hf.base_model
    h = base.embeddings(input_ids=ids, token_type_ids=token_type_ids)
    key_mask = torch.zeros(exits.shape, dtype=h.dtype).masked_fill(exits == 0, torch.finfo(h.dtype).min)
    key_mask = key_mask[:, None, None, :]
    states = [h]
    for number, layer in enumerate(base.encoder.layer, start=1):
        out = layer(h, attention_mask=key_mask)
        out = out[0] if isinstance(out, tuple) else out
        h = torch.where((exits >= number)[..., None], out, h)
        states.append(h)
    logits = hf.classifier(base.pooler(h)) if uses_pooler else hf.classifier(h)
    return logits, states


def _random_exits(real, seed):
    g = torch.Generator().manual_seed(seed)
    exits = torch.where(real, torch.randint(1, LAYERS + 1, real.shape, generator=g), 0)
    exits[:, 0] = LAYERS   # [CLS] / <s> reaches the head fully updated
    return exits


def _assert_matches_reference(model, hf, ids, types, exits, uses_pooler):
    schedule = build_exit_schedule(exits, LAYERS)
    # the case under test really reorders tokens and packs rows with different active counts
    assert not schedule.identity and any(i is not None for i in schedule.active_index)
    logits, states = model(ids, types, schedule, output_hidden_states=True)
    ref_logits, ref_states = _slow_hashee(hf, ids, types, exits, uses_pooler)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=0)
    real = exits > 0
    for layer, (state, ref) in enumerate(zip(states, ref_states)):
        torch.testing.assert_close(state[real], ref[real], atol=1e-5, rtol=0, msg=f"layer {layer}")


def test_roberta_head_with_reordered_tokens_equals_slow_reference(padded_batch):
    ids, real, _ = padded_batch
    ids = _pad(ids, real, pad_id=1)
    hf = tiny_classifier("roberta", LAYERS)
    model = HashEEForSequenceClassification(hf).eval()
    assert not model.uses_pooler   # RoBERTa's head reads <s> from the sequence itself
    _assert_matches_reference(model, hf, ids, None, _random_exits(real, seed=3), uses_pooler=False)


def test_sentence_pairs_with_token_types_and_differing_exits_equal_slow_reference(padded_batch):
    ids, real, lengths = padded_batch
    # two segments per row: [CLS] a ... [SEP] | b ... [SEP], the second with token type 1
    first_len = (lengths // 2)[:, None]
    types = ((torch.arange(ids.shape[1])[None, :] >= first_len) & real).long()
    hf = tiny_classifier("bert", LAYERS)
    model = HashEEForSequenceClassification(hf).eval()
    exits = _random_exits(real, seed=4)
    _assert_matches_reference(model, hf, ids, types, exits, uses_pooler=True)
    # the token types do reach the model
    schedule = build_exit_schedule(exits, LAYERS)
    assert not torch.allclose(model(ids, types, schedule), model(ids, torch.zeros_like(types), schedule))


# --- bf16: the model converted to bf16 and an fp32 model under autocast -------------------------

class _CudaDtypeRules(TorchFunctionMode):
    """Dtype rules CUDA enforces and CPU does not, so CPU tests stand in for CUDA ones.
    CPU autocast promotes index_copy's tensors to a common dtype; CUDA autocast leaves them alone
    and index_copy then refuses mixed dtypes. CUDA's fused attention kernels want a bool mask or
    one in the query's dtype."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.index_copy, torch.Tensor.index_copy_, torch.index_copy):
            source = args[3] if len(args) > 3 else kwargs["source"]
            if args[0].dtype != source.dtype:
                raise RuntimeError(f"index_copy of {source.dtype} into {args[0].dtype} (refused on CUDA)")
        if func is F.scaled_dot_product_attention:
            mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
            if mask is not None and mask.dtype not in (torch.bool, args[0].dtype):
                raise RuntimeError(f"{mask.dtype} attention mask for {args[0].dtype} queries (refused on CUDA)")
        return func(*args, **kwargs)


def _unit_gain(hf):
    """Linear weights ~ N(0, 1/fan_in): layers then move states by O(1), so a token updated one
    layer too often or too rarely moves far beyond the bf16 rounding (BERT's 0.02 init moves it
    by about as little as bf16 rounds)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in hf.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=g) / module.in_features ** 0.5)
    return hf


def _bf16_case(packed, padded_batch):
    """(ids, exits, schedule): rows with different numbers of active tokens (packed path), or rows that hold
    the same exit layers in different orders (no packing, but still reordered)."""
    ids, real, _ = padded_batch
    if packed:
        exits = _random_exits(real, seed=5)
    else:
        ids = ids[:, :5]   # no padding
        exits = torch.tensor([[4, 1, 3, 2, 1], [4, 2, 1, 1, 3], [4, 3, 2, 1, 1]])
    schedule = build_exit_schedule(exits, LAYERS)
    assert (any(i is not None for i in schedule.active_index)) == packed and not schedule.identity
    return ids, exits, schedule


def _assert_bf16_close(result, fp32_result, exits):
    """bf16 keeps 8 significant bits (relative step 2**-8 = 0.4%). Measured on these cases: states
    of unit scale within 0.036 of fp32 and logits within 0.014, while one token updated by one layer
    more moves states by 1.5-2.2 and the logits by 0.08; the bounds sit between the two."""
    logits, states = result
    ref_logits, ref_states = fp32_result
    real = exits > 0
    torch.testing.assert_close(logits.float(), ref_logits, atol=0.04, rtol=0)
    for layer, (state, ref) in enumerate(zip(states, ref_states)):
        torch.testing.assert_close(state[real].float(), ref[real], atol=0.1, rtol=0, msg=f"layer {layer}")


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "exact-prefix"])
def test_bf16_model_matches_fp32(packed, padded_batch):
    ids, exits, schedule = _bf16_case(packed, padded_batch)
    fp32 = HashEEForSequenceClassification(_unit_gain(tiny_classifier("bert", LAYERS))).eval()
    bf16 = HashEEForSequenceClassification(_unit_gain(tiny_classifier("bert", LAYERS)).to(torch.bfloat16)).eval()
    with torch.no_grad(), _CudaDtypeRules():
        expected = fp32(ids, None, schedule, output_hidden_states=True)
        result = bf16(ids, None, schedule, output_hidden_states=True)
    assert result[0].dtype == torch.bfloat16
    _assert_bf16_close(result, expected, exits)


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "exact-prefix"])
def test_fp32_model_under_bf16_autocast_matches_fp32(packed, padded_batch):
    ids, exits, schedule = _bf16_case(packed, padded_batch)
    model = HashEEForSequenceClassification(_unit_gain(tiny_classifier("bert", LAYERS))).eval()
    with torch.no_grad():
        expected = model(ids, None, schedule, output_hidden_states=True)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), _CudaDtypeRules():
        result = model(ids, None, schedule, output_hidden_states=True)
    _assert_bf16_close(result, expected, exits)


def test_backward_under_bf16_autocast_matches_fp32_gradients(padded_batch):
    ids, exits, schedule = _bf16_case(True, padded_batch)
    hf = _unit_gain(tiny_classifier("bert", LAYERS))
    model = HashEEForSequenceClassification(hf).eval()
    target = torch.tensor([0, 2, 1])

    def query_grads(autocast):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast), _CudaDtypeRules():
            loss = F.cross_entropy(model(ids, None, schedule).float(), target)
        loss.backward()
        return [layer.attention.self.query.weight.grad.clone() for layer in hf.bert.encoder.layer]

    expected, result = query_grads(False), query_grads(True)
    for layer, (grad, ref) in enumerate(zip(result, expected), start=1):
        assert grad.dtype == torch.float32 and torch.isfinite(grad).all()
        assert ref.abs().sum() > 0, f"layer {layer}: no gradient"
        # measured relative error 1-2% (bf16 rounding through 4 layers and back)
        assert (grad - ref).norm() / ref.norm() < 0.05, f"layer {layer}"
