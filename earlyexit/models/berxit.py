"""BERxiT (Xin et al., EACL 2021; baselines-spec.md 2.5): the learning-to-exit (LTE) module, its
targets and loss, the `alternate-lte` objective and the exit rule on LTE outputs, as plain
functions; then the model on the multi-exit backbone and the LTE exit rule for the batched runner.
Layers are 1-based (exit layer e in 1..L).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from earlyexit.dynamic.exit_rules import ExitRule, LayerView, host_sigmoids
from earlyexit.models.multi_exit import OWN_POOLER, MultiExitClassifier, _pretrained_pooler

# The eval script's "never exit" value; LTE outputs lie in (0, 1), so no threshold <= 0 fires.
NEVER_EXIT = -1.0


class LearningToExit(nn.Module):
    """One Linear(H -> 1) + sigmoid shared by all layers: u_i in (0, 1), the predicted
    "uncertainty" of layer i (1 = this layer is wrong, continue)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled [..., H] (a highway's pooled vector after its dropout, spec B9) -> u [...]."""
        return self.column(pooled).squeeze(-1)

    def column(self, pooled: torch.Tensor) -> torch.Tensor:
        """u as a column [R, 1] of pooled [R, H], or [1] of one pooled vector [H]."""
        return self.lean()(pooled)

    def lean(self, logit: bool = False):
        """`column` as a plain function over the module's tensors: the exit rule calls it after
        every layer, where a batch-1 exit pays each module call and attribute lookup (issue 18).
        `logit`: the score before the sigmoid (the rule takes the sigmoid on the host:
        exit_rules.host_sigmoids)."""
        weight, bias = self.linear.weight, self.linear.bias

        def column(pooled: torch.Tensor) -> torch.Tensor:
            if pooled.dim() == 1:          # one row: a matrix-vector product (no GEMM packing)
                score = torch.addmv(bias, weight, pooled)
            else:
                score = F.linear(pooled, weight, bias)
            return score if logit else torch.sigmoid(score)
        return column


def lte_targets(layer_logits: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    """Targets of the LTE, detached: per row and layer, 1 - 1[argmax = label] (classification) or
    |tanh(prediction - label)| (regression). layer_logits [B, L, C] (C = 1 for regression) -> [B, L]."""
    with torch.no_grad():
        if regression:
            return torch.tanh(layer_logits.squeeze(-1).float() - labels.float()[:, None]).abs()
        return (layer_logits.argmax(dim=-1) != labels[:, None]).float()


def lte_loss(uncertainty: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """MSE between LTE outputs [B, L] and their targets, mean over layers and rows."""
    return F.mse_loss(uncertainty.float(), targets)


def exit_losses(layer_logits: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    """Per-exit loss [L] (mean over the batch): cross-entropy, or MSE for regression."""
    if regression:
        return ((layer_logits.squeeze(-1).float() - labels.float()[:, None]) ** 2).mean(dim=0)
    flat = F.cross_entropy(layer_logits.flatten(0, 1).float(), labels.repeat_interleave(layer_logits.shape[1]),
                           reduction="none")
    return flat.view(layer_logits.shape[0], layer_logits.shape[1]).mean(dim=0)


def alternate_lte_loss(step: int, per_exit: torch.Tensor, lte: torch.Tensor,
                       odd_step_includes_final: bool = False) -> torch.Tensor:
    """The `alternate-lte` routine: even steps train the final head, loss_L + lte; odd steps the
    highways, sum of loss_1..loss_{L-1} + lte (the code omits the final loss there, spec B8; with
    `odd_step_includes_final` it is added, as in the plain `alternate` routine)."""
    if step % 2 == 0:
        return per_exit[-1] + lte
    odd = per_exit[:-1].sum() + lte
    return odd + per_exit[-1] if odd_step_includes_final else odd


def parse_thresholds(value, num_layers: int) -> list[float]:
    """τ per layer 1..L-1 from one number or the code's per-layer groups "v,n;v,n" (n layers at v,
    in order; the last group extends to the end)."""
    if isinstance(value, (int, float)):
        return [float(value)] * (num_layers - 1)
    out: list[float] = []
    for group in str(value).split(";"):
        v, n = group.split(",")
        out += [float(v)] * int(n)
    if not out:
        raise ValueError(f"BERxiT threshold {value!r}: no groups")
    out += [out[-1]] * max(0, num_layers - 1 - len(out))
    return out[:num_layers - 1]


def exit_layers(uncertainty: torch.Tensor, thresholds) -> torch.Tensor:
    """The exit rule: first layer i < L with u_i < τ_i, else L (the final head always answers at L,
    the `i+1 < L` guard, spec B1). uncertainty [B, L] -> exit layer [B]."""
    num_layers = uncertainty.shape[1]
    tau = torch.as_tensor(parse_thresholds(thresholds, num_layers) if not torch.is_tensor(thresholds) else thresholds,
                          dtype=uncertainty.dtype, device=uncertainty.device)
    fire = uncertainty[:, :num_layers - 1] < tau[None, :]
    fire = torch.cat([fire, torch.ones_like(fire[:, :1])], dim=1)   # layer L always answers
    return fire.to(torch.int8).argmax(dim=1) + 1


# --- on the multi-exit backbone ------------------------------------------------------------------


class BERxiTClassifier(MultiExitClassifier):
    """DeeBERT's exits (highways 1..L-1 with their own poolers, the model's head at L) and one LTE
    module. The authors' L-th highway exists only to feed the LTE at layer L (the final head answers
    there): its pooler (a copy of the pretrained one) and dropout are kept for that."""

    def __init__(self, hf_model: nn.Module, layer_poolers: list[dict] | None = None):
        """`layer_poolers`: pretrained poolers of layers 1..L (ElasticBERT's) for the highways;
        None: every highway starts from the backbone's pooler (BERT)."""
        import copy

        super().__init__(hf_model, OWN_POOLER)
        config = hf_model.config
        self.lte = LearningToExit(config.hidden_size)
        self.last_pooler = copy.deepcopy(_pretrained_pooler(hf_model))
        self.last_dropout = nn.Dropout(config.hidden_dropout_prob)
        if layer_poolers is not None:
            if len(layer_poolers) != self.num_layers:
                raise ValueError(f"{len(layer_poolers)} layer poolers for {self.num_layers} layers")
            for head, state in zip(self.exits[:-1], layer_poolers):
                head.pooler.load_state_dict(state)
            self.last_pooler.load_state_dict(layer_poolers[-1])

    def lte_forward(self, input_ids, token_type_ids, attention_mask) -> tuple[torch.Tensor, torch.Tensor]:
        """Every exit's logits [B, L, C] and LTE output [B, L]; each LTE reads the same dropped-out
        highway vector as its classifier (spec B9)."""
        h, mask = self.embed(input_ids, token_type_ids, attention_mask)
        logits, uncertainty = [], []
        for number, (layer, head) in enumerate(zip(self.layers, self.exits), start=1):
            h = layer(h, mask)
            if number < self.num_layers:
                pooled = head.dropout(head.pooler(h))
                logits.append(head.classifier(pooled))
            else:
                pooled = self.last_dropout(self.last_pooler(h))
                logits.append(head(h, mask))
            uncertainty.append(self.lte(pooled))
        return torch.stack(logits, dim=1), torch.stack(uncertainty, dim=1)

    def alternate_loss(self, batch, position: int, regression: bool, odd_step_includes_final: bool = False):
        """`alternate-lte` on one batch (input_ids, token_type_ids, attention_mask, labels) at
        `position` in the epoch."""
        ids, types, mask, labels = batch
        logits, uncertainty = self.lte_forward(ids, types, mask)
        lte = lte_loss(uncertainty, lte_targets(logits, labels, regression))
        return alternate_lte_loss(position, exit_losses(logits, labels, regression), lte, odd_step_includes_final)


class LTERule(ExitRule):
    """Exit at layer i < L when the LTE output on its highway vector is below τ_i (the runner lets
    the final head answer at L)."""

    def __init__(self, model: BERxiTClassifier, thresholds):
        self.model = model
        self.tau = tuple(float(t) for t in parse_thresholds(thresholds, model.num_layers))

    def start(self, batch_size: int, num_layers: int, device: torch.device) -> None:
        super().start(batch_size, num_layers, device)
        # no module calls or lookups per layer (built once per session)
        self._pooled, self._lte = self.model.session_cached("lte rule", lambda: (
            [head.pooled_of for head in self.model.exits[:-1]],                 # layers 1..L-1 decide
            self.model.lte.lean(logit=True)))

    def decide(self, view: LayerView) -> list[bool]:
        score = self._lte(self._pooled[view.layer - 1](view.hidden))     # [A, 1], or [1] for one row
        tau = self.tau[view.layer - 1]
        return [u < tau for u in host_sigmoids(score)]           # u = sigmoid(score), in float64
