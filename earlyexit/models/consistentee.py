"""ConsistentEE (Zeng et al., AAAI 2024; consistentee-spec.md sections in brackets): the per-layer
policy networks [1.2], the exit decision [1.3], the PABEE-weighted multi-exit loss of stage 1 [2.1],
the memorized layer [2.2] and the REINFORCE formulation with the hardness-guided reward [2.3], as
plain functions; then the model on the multi-exit backbone (one shared pooler, a linear head per
layer, a policy per layer) and the policy exit rule for the batched runner.

Layers are 1-based everywhere (exit layer e in 1..L), as in the run records.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from earlyexit.dynamic.exit_rules import ExitRule, LayerView, host_sigmoid, host_sigmoids
from earlyexit.models.multi_exit import SHARED_POOLER, MultiExitClassifier

# Clamp policy probabilities before logs (the BERT code has no epsilon, spec B7; its LLM code uses 1e-6).
PROB_EPS = 1e-6
ACTION_MODES = ("threshold", "sample")
REWARD_HARDNESS = ("linear", "none")


class ExitPolicy(nn.Module):
    """One layer's policy [1.2]: Linear(H -> width), GELU, Linear(width -> 1), sigmoid = P(exit)."""

    def __init__(self, hidden_size: int, width: int = 32):
        super().__init__()
        self.hidden = nn.Linear(hidden_size, width)
        self.out = nn.Linear(width, 1)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled [R, H] -> P(exit) [R]."""
        return self.column(pooled).squeeze(-1)

    def column(self, pooled: torch.Tensor) -> torch.Tensor:
        """P(exit) as a column [R, 1] of pooled [R, H] (the exit rule reads it as is: one op less
        per layer), or [1] of one pooled vector [H]."""
        return self.lean()(pooled)

    def lean(self, logit: bool = False):
        """`column` as a plain function over the module's tensors: the exit rule calls it after
        every layer, where a batch-1 exit pays each module call and attribute lookup (issue 18).
        `logit`: the score before the sigmoid (the rule takes the sigmoid on the host:
        exit_rules.host_sigmoids)."""
        w1, b1, w2, b2 = self.hidden.weight, self.hidden.bias, self.out.weight, self.out.bias
        gelu, linear = nn.functional.gelu, nn.functional.linear

        def column(pooled: torch.Tensor) -> torch.Tensor:
            if pooled.dim() == 1:          # one row: matrix-vector products (no GEMM packing)
                score = torch.addmv(b2, w2, gelu(torch.addmv(b1, w1, pooled)))
            else:
                score = linear(gelu(linear(pooled, w1, b1)), w2, b2)
            return score if logit else torch.sigmoid(score)
        return column

    def host_probabilities(self) -> Callable[[torch.Tensor], list[float]]:
        """P(exit) of each row of pooled [R, H], or of one pooled vector [H], as host floats (the
        exit rule's input). One vector: the hidden layer on the device (one matrix-vector product),
        then its GELU, the output layer and the sigmoid on the host in float64 from the hidden
        layer's one `tolist()` (`host_gelu_dot`). Why: right after a layer at batch 1 the device's
        GELU and 1 x width product cost about 35 µs (the GELU kernel's code is cold: the layers run
        theirs inside the GEMM), against about 5 µs of Python arithmetic on 32 numbers (issue 18).
        The probability differs from the device's fp32 tail by its rounding (about 1e-7), so a
        decision can differ from the batched path's only for a probability that close to the
        threshold. More rows: the score on the device (`lean`), its sigmoid on the host."""
        score_of = self.lean(logit=True)
        w1, b1 = self.hidden.weight, self.hidden.bias
        w2 = self.out.weight.detach().double().view(-1).tolist()   # exact copies of the weights
        b2 = float(self.out.bias.detach().double().view(-1)[0])

        def probabilities(pooled: torch.Tensor) -> list[float]:
            if pooled.dim() == 1:
                return [host_sigmoid(host_gelu_dot(torch.addmv(b1, w1, pooled).tolist(), w2, b2))]
            return host_sigmoids(score_of(pooled))
        return probabilities


_SQRT_HALF = math.sqrt(0.5)


def host_gelu_dot(values: list[float], weights: list[float], bias: float) -> float:
    """bias + sum_j weights_j * gelu(values_j) in float64 on the host, with the exact (erf) GELU
    that nn.functional.gelu computes by default."""
    erf, total = math.erf, bias
    for weight, value in zip(weights, values):
        total += weight * (0.5 * value * (1.0 + erf(value * _SQRT_HALF)))
    return total


class LayerPolicies(nn.Module):
    """One ExitPolicy per layer; the layer index is implicit in which policy reads the state."""

    def __init__(self, num_layers: int, hidden_size: int, width: int = 32):
        super().__init__()
        self.layers = nn.ModuleList(ExitPolicy(hidden_size, width) for _ in range(num_layers))

    def forward(self, layer: int, pooled: torch.Tensor) -> torch.Tensor:
        """P(exit) at 1-based `layer` for each row of `pooled` [R, H] -> [R]."""
        return self.layers[layer - 1](pooled)

    def all_layers(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled [R, L, H] (the state at every layer) -> P(exit) [R, L]."""
        return torch.stack([policy(pooled[:, i]) for i, policy in enumerate(self.layers)], dim=1)


def first_exit(exit_now: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """exit_now [R, L] bool (the exit action at each layer) -> (exit layer [R] in 1..L, chose [R]).

    A row exits at its first layer with the exit action; a row with none runs to L (a forced exit,
    `chose` False)."""
    num_layers = exit_now.shape[1]
    chose = exit_now.any(dim=1)
    first = exit_now.to(torch.int8).argmax(dim=1) + 1           # argmax finds the first True
    return torch.where(chose, first, torch.full_like(first, num_layers)), chose


def inference_exit_layers(probs: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """The deterministic exit rule [1.3]: first layer with P(exit) > threshold, else L."""
    return first_exit(probs > threshold)[0]


def sample_actions(probs: torch.Tensor, mode: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """The exit action at every layer [2.3]: "sample" = a Bernoulli draw, the score-function
    estimator's own assumption and the suite's training default; "threshold" = 1[p > 0.5], the
    released code (eps = 0): the K copies of an instance then share one trajectory unless dropout
    moves a policy across 0.5, their advantage is zero and the policy gets no gradient (spec B2)."""
    if mode == "threshold":
        return probs > 0.5
    if mode == "sample":
        return torch.rand(probs.shape, generator=generator, device=probs.device) < probs
    raise ValueError(f"action mode {mode!r} is not one of {ACTION_MODES}")


def trajectory_log_prob(probs: torch.Tensor, exit_layer: torch.Tensor, chose: torch.Tensor,
                        count_final_as_continue: bool = True) -> torch.Tensor:
    """log pi of each row's trajectory [2.3]: sum over l < e of log(1 - p_l), plus log p_e when the
    row chose to exit at e. A forced exit at L counts as "continue", log(1 - p_L), as in the code
    (spec A3), or adds nothing with `count_final_as_continue` False."""
    p = probs.float().clamp(PROB_EPS, 1 - PROB_EPS)      # fp32: 1 - 1e-6 is 1.0 in bf16
    layers = torch.arange(1, probs.shape[1] + 1, device=probs.device)[None, :]
    e = exit_layer[:, None]
    before = (layers < e).to(p.dtype)
    at_exit = (layers == e).to(p.dtype)
    log_exit = torch.log(p)
    log_continue = torch.log1p(-p)
    final = torch.where(chose[:, None], log_exit,
                        log_continue if count_final_as_continue else torch.zeros_like(log_continue))
    return (before * log_continue + at_exit * final).sum(dim=1)


def gather_exit(per_layer: torch.Tensor, exit_layer: torch.Tensor) -> torch.Tensor:
    """per_layer [R, L, ...] -> each row's value at its 1-based exit layer [R, ...]."""
    index = (exit_layer - 1).view(-1, *([1] * (per_layer.dim() - 1)))
    index = index.expand(-1, 1, *per_layer.shape[2:])
    return per_layer.gather(1, index).squeeze(1)


def memorized_layers(correct: torch.Tensor) -> torch.Tensor:
    """The memorized layer of each instance [2.2] from correct [N, L] bool (exit l right or not):
    the smallest l such that exits l, l+1, ..., L are all correct; L when exit L is wrong (the
    code's default, which also covers "never right", spec A1). Lower = easier."""
    num_layers = correct.shape[1]
    trailing = torch.flip(correct.to(torch.int64), dims=[1]).cumprod(dim=1).sum(dim=1)
    return num_layers + 1 - trailing.clamp(min=1)


def reward(loss: torch.Tensor, exit_layer: torch.Tensor, memorized: torch.Tensor, num_layers: int,
           alpha: float, hardness: str = "linear") -> torch.Tensor:
    """The episode's reward [2.3]. "linear" (the paper's hardness-guided reward):
    r = -loss - alpha * (1 - m / L) * e, so easy instances (small m) pay about alpha per layer used
    and the hardest (m = L) pay nothing. "none" (the released code): r = -loss."""
    if hardness == "none":
        return -loss
    if hardness != "linear":
        raise ValueError(f"reward hardness {hardness!r} is not one of {REWARD_HARDNESS}")
    cost = (1.0 - memorized.to(loss.dtype) / num_layers) * exit_layer.to(loss.dtype)
    return -loss - alpha * cost


def group_advantage(rewards: torch.Tensor, copies: int) -> torch.Tensor:
    """Rewards of a batch tiled `copies` times (copy j of instance i at row j*B + i) minus the mean
    over the copies of the same instance: REINFORCE's per-instance baseline [2.3]."""
    grouped = rewards.view(copies, -1)
    return (grouped - grouped.mean(dim=0, keepdim=True)).reshape(-1)


def policy_loss(log_prob: torch.Tensor, rewards: torch.Tensor, copies: int) -> torch.Tensor:
    """-mean(A * log pi) over the B*K rows, the advantage held constant [2.3]."""
    return -(group_advantage(rewards.detach(), copies) * log_prob).mean()


def tile(tensor: torch.Tensor, copies: int) -> torch.Tensor:
    """K copies of a batch along the batch axis, copy j of row i at j*B + i (the code's layout)."""
    return tensor.repeat(copies, *([1] * (tensor.dim() - 1)))


def weighted_exit_loss(losses: torch.Tensor) -> torch.Tensor:
    """Stage 1's loss [2.1]: per-exit losses [L] weighted by layer index, sum_l l*loss_l / sum_l l."""
    weights = torch.arange(1, losses.shape[0] + 1, device=losses.device, dtype=losses.dtype)
    return (weights * losses).sum() / weights.sum()


def rollout_losses(layer_logits: torch.Tensor, probs: torch.Tensor, labels: torch.Tensor,
                   memorized: torch.Tensor, copies: int, *, alpha: float, hardness: str = "linear",
                   action_mode: str = "sample", count_final_as_continue: bool = True,
                   regression: bool = False, generator: torch.Generator | None = None) -> dict:
    """One REINFORCE rollout over a tiled batch [2.3-2.5]: layer_logits [R, L, C] and probs [R, L]
    (every layer's exit logits and P(exit); R = K*B rows, tiled by `tile`), labels [R], memorized
    layers [R]. Each row acts at every layer, exits at its first exit action (else L), and is
    scored by its exit layer's prediction only (the "consistent" objective). Returns the policy
    loss, the mean loss at the exit layers, and the exit layers and rewards."""
    actions = sample_actions(probs.detach(), action_mode, generator)
    exit_layer, chose = first_exit(actions)
    chosen = gather_exit(layer_logits, exit_layer).float()
    if regression:
        task_loss = (chosen.squeeze(-1) - labels.float()) ** 2
    else:
        task_loss = nn.functional.cross_entropy(chosen, labels, reduction="none")
    rewards = reward(task_loss.detach(), exit_layer, memorized, layer_logits.shape[1], alpha, hardness)
    log_prob = trajectory_log_prob(probs, exit_layer, chose, count_final_as_continue)
    return {"policy": policy_loss(log_prob, rewards, copies), "task": task_loss.mean(),
            "exit_layer": exit_layer, "reward": rewards}


# --- on the multi-exit backbone ------------------------------------------------------------------

class ConsistentEEClassifier(MultiExitClassifier):
    """PABEE-shaped exits [1.1] (the one pretrained pooler shared by every exit, then dropout and a
    Linear(H, C) per layer; exit L is the full model) and a policy per layer reading the pooled
    [CLS] vector before the classifier dropout [1.2]."""

    def __init__(self, hf_model: nn.Module, policy_width: int = 32):
        super().__init__(hf_model, SHARED_POOLER)
        self.policies = LayerPolicies(self.num_layers, hf_model.config.hidden_size, policy_width)

    @property
    def pooler(self) -> nn.Module:
        return self.exits[0].pooler

    def states(self, input_ids, token_type_ids, attention_mask, detach_state: bool = False):
        """Every exit's logits [R, L, C] and P(exit) [R, L] (every row through every layer: a row's
        loss reads only layers up to its exit, so the gradients equal a real early-exit rollout)."""
        out = self.forward(input_ids, token_type_ids, attention_mask, output_hidden=True)
        pooled = torch.stack([self.pooler(h) for h in out.hidden], dim=1)
        return torch.stack(out.logits, dim=1), self.policies.all_layers(pooled.detach() if detach_state else pooled)


class PolicyRule(ExitRule):
    """Exit at the first layer whose policy gives P(exit) > threshold (0.5: the paper's
    deterministic decision [1.3]); the runner lets exit L answer."""

    def __init__(self, model: ConsistentEEClassifier, threshold: float = 0.5):
        self.model, self.threshold = model, float(threshold)

    def start(self, batch_size: int, num_layers: int, device: torch.device) -> None:
        super().start(batch_size, num_layers, device)
        # plain lists of functions: no module calls or lookups per layer (built once per session)
        self._pooled, self._policies = self.model.session_cached("policy rule", lambda: (
            [head.pooled_of for head in self.model.exits[:-1]],                 # layers 1..L-1 decide
            [policy.host_probabilities() for policy in self.model.policies.layers]))

    def decide(self, view: LayerView) -> list[bool]:
        pooled = self._pooled[view.layer - 1](view.hidden)          # the exit head's, reused
        threshold = self.threshold
        return [p > threshold for p in self._policies[view.layer - 1](pooled)]   # host floats
