"""The suite's one fast linear path: oneDNN with packed weights for CPU inference, a property of the
backbone, so every model built on it (the full model, HashEE, every multi-exit model, the cascade's
two models, the static baselines) runs the same kernels.

`install_fast_linears(hf_model)` (called by earlyexit.models.backbones.load_classifier) turns every
nn.Linear of the encoder's layers into a `FastLinear` (the same parameters, the same state-dict
keys), a BERT-family FFN input (`dense` + `intermediate_act_fn`) into a `FastIntermediate`, whose
exact (erf) GELU runs inside the GEMM, and a BERT-family output block (`dense`, `dropout`,
`LayerNorm` of dense + residual) into a `FastOutput`, whose residual add runs inside the GEMM.

A FastLinear takes the packed path on the CPU when autograd is off and either
- its weight is fp32 and no autocast is on: packed fp32 weights;
- its weight is bf16, or fp32 under torch.autocast("cpu", dtype=torch.bfloat16): packed bf16 weights
  (autocast would otherwise convert the fp32 weight at every call).
Everything else (training, CUDA, fp16, other autocast dtypes) is nn.Linear's own forward.
Why packed oneDNN: on few rows (batch 1, the active tokens of HashEE's late layers) its time stays
at the cost of reading the weights while the default GEMM's grows with the rows, and in bf16 it uses
the CPU's bf16 matrix units (AMX / AVX512-BF16) better than the default path (docs/benchmarks.md).
It is off for backbones narrower than 256, where the op's per-call cost outweighs its faster GEMM.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import GELUActivation

# Narrower backbones keep the default GEMM (measured slower with oneDNN at hidden 64).
MIN_FAST_WIDTH = 256


PACKED = "_packed"          # the prefix of the __dict__ slots holding packed weights


def tensor_state(tensor: torch.Tensor) -> tuple:
    """What tells that a tensor was replaced or updated in place by an ordinary op: its storage and
    its version counter (inference tensors, made inside torch.inference_mode, keep none: 0)."""
    return tensor.data_ptr(), 0 if tensor.is_inference() else tensor._version


def derived(owner: nn.Module, slot: str, tensors: tuple, extra, build: Callable, *args):
    """`build(*args)` (a value computed from `tensors`), kept in `owner.__dict__[slot]` (`slot` starts
    with PACKED; `owner` a `PackedCache`) and built again when `extra` differs or one of `tensors`
    was replaced or updated in place (`tensor_state`). Every packed linear call checks it: the key
    is built inline."""
    key = [extra]
    for t in tensors:
        key += t.data_ptr(), 0 if t.is_inference() else t._version
    cache = owner.__dict__.get(slot)
    if cache is None or cache[0] != key:
        cache = owner.__dict__[slot] = (key, build(*args))
    return cache[1]


def packed_weight(owner: nn.Module, slot: str, weight: torch.Tensor, bias: torch.Tensor | None,
                  dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`weight` packed for oneDNN (and `bias`) in `dtype`, kept in `owner.__dict__[slot]` and packed
    again when either was replaced or updated in place (`derived`)."""
    tensors = (weight,) if bias is None else (weight, bias)
    return derived(owner, slot, tensors, (dtype, weight.shape), _pack, weight, bias, dtype)


def _pack(weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype) -> tuple:
    packed_bias = None if bias is None else bias.detach().to(dtype)
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach().to(dtype), None), packed_bias


class PackedCache:
    """Mixin of a module that keeps packed weights (`packed_weight`). Fused optimizers update weights
    without bumping their version counters, so the packed copies are also dropped at every
    train()/eval() switch (the training loop makes one around each step and each evaluation); copies
    (deepcopy, pickling) pack their own."""

    def train(self, mode: bool = True):
        for slot in [key for key in self.__dict__ if key.startswith(PACKED)]:
            del self.__dict__[slot]
        return super().train(mode)

    def __getstate__(self):
        return {key: value for key, value in super().__getstate__().items() if not key.startswith(PACKED)}


class FastLinear(PackedCache, nn.Linear):
    """nn.Linear with the packed oneDNN path for CPU inference (`fast`: on/off switch)."""

    fast: bool = True

    def forward(self, x: torch.Tensor, activation: nn.Module | None = None,
                residual: torch.Tensor | None = None) -> torch.Tensor:
        """x W^T + b, then `activation`, or plus `residual` (shaped like the output; not both)."""
        dtype = self._packed_dtype(x)
        if dtype is None:
            out = F.linear(x, self.weight, self.bias)
            out = out if activation is None else activation(out)
            return out if residual is None else out + residual
        packed, bias = self._packed(dtype)
        if residual is not None and activation is not None:
            raise ValueError("FastLinear: an activation and a residual in one call")
        if residual is not None and residual.dtype == dtype:
            # (an fp32 residual under bf16 autocast is added after the GEMM, as on the module path)
            out = torch.ops.mkldnn._linear_pointwise.binary(x.reshape(-1, x.shape[-1]).to(dtype),
                                                            residual.reshape(-1, residual.shape[-1]), packed, bias, "add")
            return out.view(*x.shape[:-1], out.shape[-1])
        # the exact GELU of BERT-family FFNs runs inside the GEMM; any other activation after it
        fused = isinstance(activation, GELUActivation) and activation.act is F.gelu
        out = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]).to(dtype), packed, bias,
                                                 "gelu" if fused else "none", [], "none" if fused else "")
        out = out.view(*x.shape[:-1], out.shape[-1])
        out = out if activation is None or fused else activation(out)
        return out if residual is None else out + residual

    def _packed_dtype(self, x: torch.Tensor) -> torch.dtype | None:
        """The dtype of the packed weights this call runs with; None: nn.Linear's own forward."""
        # an empty input (HeadPrune's output projection of a layer left with no heads) has no
        # oneDNN primitive; nn.Linear gives its answer (the bias)
        if x.device.type != "cpu" or x.numel() == 0:
            return None
        return self.packed_dtype()

    def packed_dtype(self) -> torch.dtype | None:
        """The dtype of the packed weights a CPU input runs with now (no autograd, the switch on, a
        weight on the CPU that oneDNN packs, fp32 or bf16 autocast or none); None: nn.Linear's own
        forward."""
        if not self.fast or torch.is_grad_enabled():
            return None
        weight = self._parameters["weight"]     # without nn.Module's attribute fallback: every call pays it
        if weight.device.type != "cpu" or weight.numel() == 0:
            return None
        if torch.is_autocast_enabled("cpu"):
            dtype = torch.bfloat16 if torch.get_autocast_dtype("cpu") == torch.bfloat16 else None
        else:
            dtype = weight.dtype if weight.dtype in (torch.float32, torch.bfloat16) else None
        return dtype if dtype is not None and _packable(dtype) else None

    def _packed(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The packed weight (and bias) in `dtype`."""
        parameters = self._parameters       # without nn.Module's attribute fallback: every call pays it
        return packed_weight(self, PACKED + "_cache", parameters["weight"], parameters["bias"], dtype)


@functools.cache
def _packable(dtype: torch.dtype) -> bool:
    """Whether this CPU's oneDNN packs `dtype` weights (bf16 needs AVX-512 BW/VL/DQ or AVX-NE-CONVERT;
    without it the default path runs)."""
    if not torch.backends.mkldnn.is_available():
        return False
    return dtype != torch.bfloat16 or torch.ops.mkldnn._is_mkldnn_bf16_supported()


class FastIntermediate(nn.Module):
    """A BERT-family FFN input (Linear(H, I) then its activation) with the GELU fused into the GEMM
    on the packed path; the children keep HF's names, so the state dict is unchanged."""

    def __init__(self, intermediate: nn.Module):
        super().__init__()
        self.dense = as_fast(intermediate.dense)
        self.intermediate_act_fn = intermediate.intermediate_act_fn

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dense(hidden_states, activation=self.intermediate_act_fn)


class FastOutput(nn.Module):
    """A BERT-family output block, LayerNorm(dropout(dense(x)) + residual), with the residual add
    inside the GEMM on the packed path; the children keep HF's names (state dict unchanged). With
    dropout active (training) it is HF's own order of operations."""

    # HF classes of that exact form (transformers v5 modeling_bert / modeling_roberta)
    FORMS = ("BertSelfOutput", "BertOutput", "RobertaSelfOutput", "RobertaOutput")

    def __init__(self, output: nn.Module):
        super().__init__()
        self.dense = as_fast(output.dense)
        self.LayerNorm = output.LayerNorm
        self.dropout = output.dropout

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        dropping = self.dropout.training and self.dropout.p > 0
        if dropping or not isinstance(self.dense, FastLinear):   # a pruned layer's new nn.Linear, until converted
            return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)
        return self.LayerNorm(self.dense(hidden_states, residual=input_tensor))


def as_fast(linear: nn.Linear) -> FastLinear:
    """A FastLinear holding `linear`'s own parameters (not copies: an optimizer keeps working)."""
    if isinstance(linear, FastLinear):
        return linear
    fast = FastLinear.__new__(FastLinear)
    nn.Module.__init__(fast)
    fast.in_features, fast.out_features = linear.in_features, linear.out_features
    fast.register_parameter("weight", linear.weight)
    fast.register_parameter("bias", linear.bias)
    fast.training = linear.training
    return fast


def _encoder_layers(hf_model: nn.Module):
    base = getattr(hf_model, "base_model", hf_model)
    encoder = getattr(base, "encoder", None) or getattr(base, "transformer", None)   # BERT family / DistilBERT
    return getattr(encoder, "layer", None) or []


def install_fast_linears(hf_model: nn.Module, enabled: bool | None = None) -> nn.Module:
    """Every linear layer of `hf_model`'s encoder layers becomes a FastLinear, in place; `enabled`
    switches their packed path (None: on for hidden sizes >= MIN_FAST_WIDTH). Idempotent (a pruned
    model's new linears are converted on a second call). Returns `hf_model`."""
    if enabled is None:
        enabled = hf_model.config.hidden_size >= MIN_FAST_WIDTH
    for layer in _encoder_layers(hf_model):
        intermediate = getattr(layer, "intermediate", None)
        if (intermediate is not None and not isinstance(intermediate, FastIntermediate)
                and isinstance(getattr(intermediate, "dense", None), nn.Linear)
                and hasattr(intermediate, "intermediate_act_fn")):
            layer.intermediate = FastIntermediate(intermediate)
        for parent in list(layer.modules()):
            for name, child in list(parent.named_children()):
                if type(child).__name__ in FastOutput.FORMS:
                    setattr(parent, name, FastOutput(child))
        for parent in list(layer.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, as_fast(child))
    set_fast_linears(hf_model, enabled)
    return hf_model


def set_fast_linears(model: nn.Module, enabled: bool) -> None:
    """Switch the packed path of every FastLinear in `model` (off: PyTorch's default GEMM, e.g. to
    compare kernels)."""
    for module in fast_linears(model):
        module.fast = enabled


def fast_linears(model: nn.Module) -> list[FastLinear]:
    return [m for m in model.modules() if isinstance(m, FastLinear)]


def uses_fast_linears(model: nn.Module) -> bool:
    """Whether every linear layer of every encoder layer in `model` (a cascade holds two backbones)
    is a FastLinear: the backbone carries the fast path, whether or not it is switched on."""
    layers = [layer for module in model.modules() if hasattr(module, "config") for layer in _encoder_layers(module)]
    linears = [m for layer in layers for m in layer.modules() if isinstance(m, nn.Linear)]
    return bool(linears) and all(isinstance(m, FastLinear) for m in linears)
