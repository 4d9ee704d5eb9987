"""The multi-exit causal LM (earlyexit/models/multi_exit_lm.py): no exit = HF greedy generate; K/V
filling = a slow reference that recomputes every step from scratch with HF's own layers; exact
FLOPs per generated token = torch's FlopCounterMode."""

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from earlyexit.cost.flops import DecoderDims, decoder_token_flops
from earlyexit.models.multi_exit_lm import MultiExitCausalLM
from tests.test_flops import COUNTER_MAPPING


def tiny_llama(seed=0, layers=4, vocab=97):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         attn_implementation="eager")
    hf = LlamaForCausalLM(config).eval()
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = 0
    return hf


def _prompt(seed=0, n=9, vocab=97):
    return torch.randint(3, vocab, (n,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", [0, 1])
def test_no_exit_generation_equals_hf_greedy_generate(seed):
    hf = tiny_llama(seed)
    model = MultiExitCausalLM(hf).eval()
    prompt = _prompt(seed)
    expected = hf.generate(prompt[None], max_new_tokens=12, do_sample=False)[0, len(prompt):].tolist()
    for own_head in (True, False):           # heads start as copies of the model's own
        out = model.generate(prompt, 12, None, own_head=own_head)
        assert out.tokens == expected and out.exit_layers == [4] * 12


def _reference_logits(hf, model, ids, exits):
    """Logits of the last position, recomputed from scratch: at layer l the positions whose exit is
    at most l keep their state (so their K/V at deeper layers come from the exit-layer state) and the
    others run HF's own decoder layer over the whole sequence."""
    body = hf.model
    h = body.embed_tokens(ids[None])
    positions = torch.arange(len(ids))[None]
    rotary = body.rotary_emb(h, positions)
    mask = torch.full((len(ids), len(ids)), float("-inf")).triu(1)[None, None]
    exits = torch.tensor(exits)
    for index, layer in enumerate(body.layers):
        out = layer(h, attention_mask=mask, position_embeddings=rotary, position_ids=positions)
        h = torch.where((exits > index)[None, :, None], out, h)
    return model.heads[int(exits[-1]) - 1](body.norm(h[:, -1]))[0]


def test_kv_filling_equals_a_slow_reference_loop():
    hf = tiny_llama(3)
    model = MultiExitCausalLM(hf).eval()
    with torch.no_grad():                     # distinct heads, so a wrong head would show
        for head in model.heads:
            head.weight.add_(0.05 * torch.randn_like(head.weight))
    prompt = _prompt(3)
    steps = [4, 1, 3, 2, 1, 4, 2, 3]          # the exit of the position behind each generated token
    out = model.generate(prompt, len(steps), None, kv_mode="fill", fixed_exits=steps, keep_logits=True)
    assert out.exit_layers == steps
    for s in range(1, len(steps)):
        ids = torch.cat([prompt, torch.tensor(out.tokens[:s])])
        exits = [4] * len(prompt) + steps[1:s + 1]
        with torch.no_grad():
            reference = _reference_logits(hf, model, ids, exits)
        torch.testing.assert_close(out.logits[s], reference, rtol=1e-5, atol=1e-5)
    # copy mode: the same until an exited token's deeper K/V are first read (step 2 reads step 1's,
    # which left at layer 1), different afterwards
    copied = model.generate(prompt, len(steps), None, kv_mode="copy", fixed_exits=steps, keep_logits=True)
    torch.testing.assert_close(copied.logits[1], out.logits[1])
    assert not torch.allclose(copied.logits[2], out.logits[2], atol=1e-4)
    assert model.generate(prompt, 6, None, kv_mode="copy").tokens == model.generate(prompt, 6, None).tokens


def _flops(run) -> int:
    with FlopCounterMode(display=False, custom_mapping=COUNTER_MAPPING) as counter:
        run()
    return counter.get_total_flops()


class AskThenFollow:
    """An exit rule that asks the real one (so its cost is spent, its answer ignored) and leaves at
    fixed layers: the k-th generated position (k >= 1) at steps[k]. Generation never asks at the last layer."""

    def __init__(self, rule, steps):
        self.rule, self.steps, self.step = rule, steps, 0

    def __call__(self, layer, normed):
        computed = self.rule(layer, normed)[1] if self.rule is not None else None
        self.step += layer == 1
        return layer >= self.steps[self.step], computed


@pytest.mark.parametrize("policy, rule, kv_mode", [("linear", "policy", "fill"), ("mlp", "policy", "copy"),
                                                   ("linear", "confidence", "fill"), ("linear", "none", "fill")])
def test_flops_per_generated_token_equal_the_flop_counter(policy, rule, kv_mode):
    hf = tiny_llama(1)
    model = MultiExitCausalLM(hf, policy=policy, policy_width=16).eval()
    prompt = _prompt(1)
    steps = [4, 2, 1, 4, 3, 1, 2] if rule != "none" else [4] * 7
    ask = {"policy": model.policy_rule(), "confidence": model.confidence_rule(0.9), "none": None}[rule]

    def generate(n):
        return model.generate(prompt, n, AskThenFollow(ask, steps), kv_mode=kv_mode)

    # the prompt pass and the first token's head are the same in both: the difference is steps 1..6
    counted = _flops(lambda: generate(len(steps))) - _flops(lambda: generate(1))
    out = generate(len(steps))
    assert out.exit_layers == steps
    dims = DecoderDims.from_hf_config(hf.config, policy, 16)
    assert counted == decoder_token_flops(out.context[1:], out.exit_layers[1:], dims, rule, kv_mode).sum()


def test_decoder_flops_count_what_each_rule_asks():
    d = DecoderDims(hidden=8, heads=2, kv_heads=1, head_dim=4, intermediate=16, num_layers=4, vocab=10)
    full = decoder_token_flops([5], [4], d, "none")[0]
    assert full == 4 * d.layer_flops(5) + d.head_flops()
    early = decoder_token_flops([5], [1], d, "policy", "fill")[0]
    assert early == d.layer_flops(5) + 3 * d.kv_flops() + d.policy_flops() + d.head_flops()
    assert decoder_token_flops([5], [1], d, "policy", "copy")[0] == early - 3 * d.kv_flops()
    # CALM pays an LM head at every layer it asks; the exit reuses the last one
    assert decoder_token_flops([5], [4], d, "confidence")[0] == 4 * d.layer_flops(5) + 4 * d.head_flops()
    with pytest.raises(ValueError):
        decoder_token_flops([5], [5], d, "none")
    assert np.all(decoder_token_flops([3, 4], [2, 2], d, "none", depth=2) == 2 * d.layer_flops(np.array([3, 4])) + d.head_flops())


def test_a_bf16_model_gets_bf16_policies_and_generates():
    # the paper preset loads the hub model in bf16 on the GPU: heads and policies follow its dtype
    hf = tiny_llama(0).to(torch.bfloat16)
    model = MultiExitCausalLM(hf).eval()
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    out = model.generate(_prompt(0), 6, model.policy_rule())
    assert len(out.tokens) == 6 and all(1 <= e <= 4 for e in out.exit_layers)
