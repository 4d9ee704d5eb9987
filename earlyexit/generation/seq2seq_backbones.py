"""Load a BART-family seq2seq model (HF BartForConditionalGeneration) from a backbone entry.

Sources: `hub` (a hub id or local folder: BART checkpoints as they are; CPT checkpoints, whose
encoder is a BERT, renamed into BART's layout, see `rename_cpt_state_dict`) and `random` (a small
randomly initialised BART with MiniLM's uncased tokenizer, for the offline demo and tests).
`num_layers` keeps the first n encoder layers and `decoder_layers` the first n decoder layers (the
-6L baselines: both stacks halved, baselines-spec section 4).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from earlyexit.models.backbones import BackboneSpec, load_tokenizer, random_init_std

# The BART config keys a CPT config.json shares (CPT's modelling code builds its config as a BartConfig).
_BART_KEYS = ("vocab_size", "d_model", "encoder_attention_heads", "decoder_attention_heads", "encoder_ffn_dim",
              "decoder_ffn_dim", "decoder_layers", "max_position_embeddings", "activation_function", "dropout",
              "attention_dropout", "activation_dropout", "pad_token_id", "bos_token_id", "eos_token_id",
              "decoder_start_token_id", "scale_embedding", "forced_eos_token_id")


def load_seq2seq_tokenizer(spec: BackboneSpec):
    return load_tokenizer(spec)      # random: MiniLM's uncased WordPiece; hub: the checkpoint's own


def load_seq2seq(spec: BackboneSpec, seed: int):
    """A BartForConditionalGeneration with the entry's layers (random weights seeded by `seed`)."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(seed)
    if spec.source == "random":
        tokenizer = load_seq2seq_tokenizer(spec)
        config = BartConfig(
            vocab_size=tokenizer.vocab_size, d_model=spec.hidden_size, encoder_layers=spec.num_layers or 4,
            decoder_layers=spec.decoder_layers or 2, encoder_attention_heads=spec.num_attention_heads,
            decoder_attention_heads=spec.num_attention_heads, encoder_ffn_dim=spec.intermediate_size,
            decoder_ffn_dim=spec.intermediate_size, max_position_embeddings=512,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.sep_token_id,
            forced_eos_token_id=None, init_std=random_init_std(spec.hidden_size),
            # a from-scratch copy task at demo size is learnt within the budget only without dropout
            dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
        return BartForConditionalGeneration(config)
    if spec.source != "hub":
        raise ValueError(f"backbones.{spec.name}.source: seq2seq backbones come from hub or random, got {spec.source!r}")
    raw = _raw_config(spec.hub_id, spec.revision)
    if _is_cpt(raw):   # CPT: BERT encoder + BART decoder, renamed into BART's layout
        state = _checkpoint(spec.hub_id, spec.revision)
        config = cpt_bart_config(raw)
        model = BartForConditionalGeneration(config)
        _load_exactly(model, rename_cpt_state_dict(state, raw), spec.hub_id)
        _set_encoder_layer_norm_eps(model, raw.get("layer_norm_eps", 1e-12))
    else:
        model = BartForConditionalGeneration.from_pretrained(spec.hub_id, revision=spec.revision)
    return truncate_layers(model, spec.num_layers, spec.decoder_layers)


def truncate_layers(model, encoder_layers: int | None, decoder_layers: int | None):
    """Keep the first n layers of each stack (None: all of them)."""
    for stack, keep, key in ((model.get_encoder(), encoder_layers, "encoder_layers"),
                             (model.get_decoder(), decoder_layers, "decoder_layers")):
        if keep is None:
            continue
        if not 1 <= keep <= len(stack.layers):
            raise ValueError(f"cannot keep {keep} {key.split('_')[0]} layers of {len(stack.layers)}")
        stack.layers = stack.layers[:keep]
        setattr(model.config, key, keep)
    return model


def seq2seq_depths(spec: BackboneSpec, download: bool = False) -> tuple[int | None, int | None]:
    """(encoder, decoder) layers the entry runs with; for a hub id, read from its config only with
    `download` (else None where the entry does not say)."""
    if spec.source == "random":
        return spec.num_layers or 4, spec.decoder_layers or 2
    if spec.num_layers and spec.decoder_layers:
        return spec.num_layers, spec.decoder_layers
    if not download and not (Path(spec.hub_id) / "config.json").is_file():
        return spec.num_layers, spec.decoder_layers
    raw = _raw_config(spec.hub_id, spec.revision)
    encoder = raw["encoder_layers"] - (raw["decoder_layers"] if _is_cpt(raw) else 0)
    return spec.num_layers or encoder, spec.decoder_layers or raw["decoder_layers"]


# --- CPT -> BART ------------------------------------------------------------------------------
# CPT (Shao et al., 2021; fastnlp/CPT modeling_cpt.py) = a BERT encoder whose last `decoder_layers`
# layers are the understanding decoder (U-Dec), plus a BART decoder (G-Dec) that cross-attends to the
# encoder state BELOW the U-Dec layers. For generation the U-Dec layers are unused, so the model is
# exactly a BART with encoder_layers - decoder_layers post-LN encoder layers. The encoder is fed
# token type 1 everywhere, so that type embedding folds into the position table.

def _is_cpt(raw: dict) -> bool:
    return "CPT" in "".join(raw.get("architectures") or []) or raw.get("model_type") == "cpt"


def cpt_bart_config(raw: dict):
    from transformers import BartConfig

    kept = {"activation_function": "gelu", **{k: raw[k] for k in _BART_KEYS if k in raw}}
    return BartConfig(**kept, encoder_layers=raw["encoder_layers"] - raw["decoder_layers"])


def rename_cpt_state_dict(state: dict, raw: dict) -> dict:
    """CPTForConditionalGeneration keys -> BartForConditionalGeneration keys (U-Dec layers dropped)."""
    keep = raw["encoder_layers"] - raw["decoder_layers"]
    layer_names = {"attention.self.query": "self_attn.q_proj", "attention.self.key": "self_attn.k_proj",
                   "attention.self.value": "self_attn.v_proj", "attention.output.dense": "self_attn.out_proj",
                   "attention.output.LayerNorm": "self_attn_layer_norm", "intermediate.dense": "fc1",
                   "output.dense": "fc2", "output.LayerNorm": "final_layer_norm"}
    renamed = {}
    for key, value in state.items():
        layer = re.match(r"model\.encoder\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$", key)
        if layer:
            index, name, kind = int(layer.group(1)), layer.group(2), layer.group(3)
            if index < keep:
                renamed[f"model.encoder.layers.{index}.{layer_names[name]}.{kind}"] = value
        elif key.startswith("model.decoder.") or key in ("lm_head.weight", "final_logits_bias"):
            renamed[key] = value
    prefix = "model.encoder.embeddings."
    words = state[prefix + "word_embeddings.weight"]
    positions = state[prefix + "position_embeddings.weight"] + state[prefix + "token_type_embeddings.weight"][1]
    # BART's learned positions are looked up at position + 2; rows 0 and 1 are never read
    table = positions.new_zeros(positions.shape[0] + 2, positions.shape[1])
    table[2:] = positions
    renamed.update({"model.shared.weight": words, "model.encoder.embed_tokens.weight": words,
                    "model.decoder.embed_tokens.weight": words, "model.encoder.embed_positions.weight": table,
                    "model.encoder.layernorm_embedding.weight": state[prefix + "LayerNorm.weight"],
                    "model.encoder.layernorm_embedding.bias": state[prefix + "LayerNorm.bias"]})
    renamed.setdefault("lm_head.weight", words)
    return renamed


def _set_encoder_layer_norm_eps(model, eps: float) -> None:
    """CPT's encoder is a BERT: its LayerNorms use BERT's epsilon (1e-12), BART's default is 1e-5."""
    import torch

    for module in model.get_encoder().modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.eps = eps


def _load_exactly(model, state: dict, where: str) -> None:
    own = model.state_dict()
    if "model.encoder.embed_positions.weight" in state:
        size = own["model.encoder.embed_positions.weight"].shape[0]
        state["model.encoder.embed_positions.weight"] = state["model.encoder.embed_positions.weight"][:size]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{where}: CPT->BART renaming left weights missing {missing[:3]} or unexpected {unexpected[:3]}")


def _raw_config(hub_id: str, revision: str | None) -> dict:
    local = Path(hub_id) / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    from huggingface_hub import hf_hub_download

    return json.loads(Path(hf_hub_download(hub_id, "config.json", revision=revision)).read_text())


def _checkpoint(hub_id: str, revision: str | None) -> dict:
    """The state dict of a checkpoint, local folder or hub id."""
    import torch

    local = Path(hub_id)

    def fetch(name: str) -> Path:
        if local.is_dir():
            return local / name
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(hub_id, name, revision=revision))

    try:
        from safetensors.torch import load_file

        return load_file(fetch("model.safetensors"))
    except Exception:  # older checkpoints (CPT's) ship only a pickle
        return torch.load(fetch("pytorch_model.bin"), map_location="cpu", weights_only=True)
