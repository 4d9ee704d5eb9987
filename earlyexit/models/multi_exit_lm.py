"""A multi-exit causal LM with token-level early exit while it generates (ConsistentEE for
generation, consistentee-spec section 8; the CALM baseline).

Any HF causal LM whose decoder layers follow the LLaMA layer API (LLaMA, Mistral, Qwen2:
`input_layernorm`, `self_attn.{q,k,v,o}_proj`, `post_attention_layernorm`, `mlp`, a final `norm`
and a rotary embedding) is driven layer by layer here, with its own weights:
- after every layer l an exit: the final norm, then an LM head of its own (`heads[l]`, initialised
  from the model's head, as released);
- a policy per layer on the normed state: Linear(H, 1) + sigmoid as released, or the paper's MLP.

Generation (batch 1, greedy, as the released inference): the prompt runs at full depth; each new
token runs layer by layer and leaves at the first layer whose exit rule fires (else the last).
The deeper layers' keys/values of an exited token are then
- "fill" (released, and CALM's state propagation): computed by each deeper layer's own K/V
  projections from the exit layer's hidden state, so later tokens attend to every position;
- "copy" (cheaper): the exit layer's own K/V of that token copied into the deeper layers' caches.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

KV_MODES = ("fill", "copy")
POLICY_KINDS = ("linear", "mlp")


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x [B, heads, T, d]; cos/sin [B, T, d] (HF's rotary embedding output)
    return x * cos[:, None] + _rotate_half(x) * sin[:, None]


class ExitPolicy(nn.Module):
    """P(exit) of one layer from its normed hidden state: Linear(H,1)+sigmoid (released) or
    Linear(H,w)-GELU-Linear(w,1)+sigmoid (the paper's MLP, the BERT code's width 32)."""

    def __init__(self, hidden: int, kind: str = "linear", width: int = 32):
        super().__init__()
        if kind not in POLICY_KINDS:
            raise ValueError(f"policy {kind!r} is not one of {POLICY_KINDS}")
        self.net = nn.Linear(hidden, 1) if kind == "linear" else nn.Sequential(
            nn.Linear(hidden, width), nn.GELU(), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x).squeeze(-1).float())


@dataclass
class Generated:
    tokens: list[int]            # generated ids (the end token included when it came)
    exit_layers: list[int]       # 1-based exit layer per generated token (the prompt's last position included)
    context: list[int]           # keys each generated token attended over (its position + 1)
    logits: list = None          # per step, the logits it chose from (keep_logits=True; tests)


# An exit rule: (1-based layer, normed hidden [1, H]) -> (exit now?, the layer's logits when the rule
# computed them, else None: CALM's exit reuses them). Never asked at the last layer.
ExitRule = Callable[[int, torch.Tensor], tuple]


class MultiExitCausalLM(nn.Module):
    def __init__(self, hf_model, policy: str = "linear", policy_width: int = 32):
        super().__init__()
        self.hf = hf_model
        body = hf_model.model
        self.embed, self.layers, self.norm, self.rotary = body.embed_tokens, body.layers, body.norm, body.rotary_emb
        config = hf_model.config
        self.num_layers = config.num_hidden_layers
        self.hidden = config.hidden_size
        self.vocab = config.vocab_size
        self.policy_kind, self.policy_width = policy, policy_width
        # One head per layer, each a copy of the model's own (released: lm_heads_0..31).
        self.heads = nn.ModuleList(copy.deepcopy(hf_model.lm_head) for _ in range(self.num_layers))
        dtype = hf_model.lm_head.weight.dtype          # a bf16 hub model gets bf16 policies
        self.policies = nn.ModuleList(ExitPolicy(self.hidden, policy, policy_width).to(dtype)
                                      for _ in range(self.num_layers))

    def reset_heads(self) -> None:
        """Every exit head a copy of the model's own head again (after the base LM was trained)."""
        with torch.no_grad():
            for head in self.heads:
                head.load_state_dict(self.hf.lm_head.state_dict())

    # --- one layer, driven from its own modules --------------------------------------------------

    def _kv(self, layer, x_normed, cos, sin):
        attn = layer.self_attn
        b, t, _ = x_normed.shape
        k = attn.k_proj(x_normed).view(b, t, -1, attn.head_dim).transpose(1, 2)
        v = attn.v_proj(x_normed).view(b, t, -1, attn.head_dim).transpose(1, 2)
        return _rotary(k, cos, sin), v

    def layer_forward(self, index: int, h: torch.Tensor, cos, sin, past=None):
        """Layer `index` (0-based) on h [B, T, H]; `past` (K, V) of earlier positions or None
        (then causal over the T positions). Returns the new h and this call's (K, V)."""
        layer = self.layers[index]
        attn = layer.self_attn
        b, t, _ = h.shape
        x = layer.input_layernorm(h)
        q = _rotary(attn.q_proj(x).view(b, t, -1, attn.head_dim).transpose(1, 2), cos, sin)
        k, v = self._kv(layer, x, cos, sin)
        keys, values = (k, v) if past is None else (torch.cat([past[0], k], 2), torch.cat([past[1], v], 2))
        groups = q.shape[1] // keys.shape[1]
        out = F.scaled_dot_product_attention(q, keys.repeat_interleave(groups, 1), values.repeat_interleave(groups, 1),
                                             is_causal=past is None and t > 1, scale=attn.scaling)
        h = h + attn.o_proj(out.transpose(1, 2).reshape(b, t, -1))
        h = h + layer.mlp(layer.post_attention_layernorm(h))
        return h, (k, v)

    def positions(self, h: torch.Tensor, start: int):
        ids = torch.arange(start, start + h.shape[1], device=h.device)[None]
        return self.rotary(h, ids)

    # --- training: every layer on every position (teacher forcing) -------------------------------

    def layer_states(self, input_ids: torch.Tensor) -> list[torch.Tensor]:
        """Normed hidden states after each layer, [L] x [B, T, H] (right padding: causal only)."""
        h = self.embed(input_ids)
        cos, sin = self.positions(h, 0)
        states = []
        for index in range(self.num_layers):
            h, _ = self.layer_forward(index, h, cos, sin)
            states.append(self.norm(h))
        return states

    def exit_logits(self, index: int, normed: torch.Tensor) -> torch.Tensor:
        return self.heads[index](normed)

    def exit_probs(self, states: list[torch.Tensor]) -> torch.Tensor:
        """P(exit) per layer and position, [B, T, L]."""
        return torch.stack([policy(s) for policy, s in zip(self.policies, states)], dim=-1)

    # --- generation -------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, max_new_tokens: int, rule: ExitRule | None, *,
                 kv_mode: str = "fill", eos_id: int | None = None, own_head: bool = False,
                 fixed_exits: list[int] | None = None, depth: int | None = None,
                 keep_logits: bool = False) -> Generated:
        """Greedy generation from `prompt` [T] (batch 1). `rule` None: every token at the last
        layer; `fixed_exits` (tests): the exit layer of each step, overriding `rule`. `own_head`:
        the last layer answers with the model's own head (the full model) instead of heads[L-1].
        `depth`: a static truncation, the first `depth` layers only (prompt included)."""
        if kv_mode not in KV_MODES:
            raise ValueError(f"kv_mode {kv_mode!r} is not one of {KV_MODES}")
        L = depth or self.num_layers
        own_head = own_head and L == self.num_layers
        h = self.embed(prompt[None])
        cos, sin = self.positions(h, 0)
        cache = []
        for index in range(L):                          # the prompt at full depth
            h, kv = self.layer_forward(index, h, cos, sin)
            cache.append(kv)
        last = self.norm(h[:, -1:])
        out = Generated([], [], [], [] if keep_logits else None)
        logits = (self.hf.lm_head if own_head else self.heads[L - 1])(last)[0, -1]
        step_exit = L
        position = prompt.shape[0]
        for step in range(max_new_tokens):
            token = int(logits.argmax())
            out.tokens.append(token)
            out.exit_layers.append(step_exit)
            out.context.append(position)
            if keep_logits:
                out.logits.append(logits)
            if (eos_id is not None and token == eos_id) or step == max_new_tokens - 1:
                break
            # the new token at `position`: layer by layer until its exit
            h = self.embed(torch.tensor([[token]], device=prompt.device))
            cos, sin = self.positions(h, position)
            position += 1
            for index in range(L):
                h, (k, v) = self.layer_forward(index, h, cos, sin, past=cache[index])
                cache[index] = (torch.cat([cache[index][0], k], 2), torch.cat([cache[index][1], v], 2))
                normed = self.norm(h)
                layer = index + 1
                computed = None
                if layer == L:
                    leave = True
                elif fixed_exits is not None:
                    leave = layer == fixed_exits[step + 1]
                else:
                    leave, computed = rule(layer, normed[:, 0]) if rule is not None else (False, None)
                if leave:
                    break
            for deeper in range(index + 1, L):          # K/V of the skipped layers
                if kv_mode == "fill":
                    k, v = self._kv(self.layers[deeper], self.layers[deeper].input_layernorm(h), cos, sin)
                cache[deeper] = (torch.cat([cache[deeper][0], k], 2), torch.cat([cache[deeper][1], v], 2))
            step_exit = index + 1
            head = self.hf.lm_head if (own_head and step_exit == L) else self.heads[index]
            logits = computed[0] if computed is not None else head(normed)[0, -1]
        return out

    # --- exit rules ------------------------------------------------------------------------------

    def policy_rule(self) -> ExitRule:
        """ConsistentEE: exit at the first layer whose policy says P(exit) > 0.5."""
        return lambda layer, normed: (bool(self.policies[layer - 1](normed)[0] > 0.5), None)

    def confidence_rule(self, threshold: float) -> ExitRule:
        """CALM: exit when top-1 minus top-2 softmax probability of the layer's head passes `threshold`."""
        def rule(layer, normed):
            logits = self.heads[layer - 1](normed)
            top = torch.softmax(logits[0].float(), -1).topk(2).values
            return bool(top[0] - top[1] >= threshold), logits
        return rule

