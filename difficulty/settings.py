"""The `difficulty:` config section: defaults for optional keys, backbone look-up, training settings.

The workflow reads only config["difficulty"] (and config["backbones"] for a backbone named there).
Training defaults are the authors' (hashee-spec 2.1, 3.1-3.3), except Linear-B, which here trains
probes on a frozen backbone (as the issue asks) and so gets a probe's learning rate.
"""

from __future__ import annotations

import copy
from pathlib import Path

from earlyexit.backbones import BackboneSpec

LEVELS = ("human", "sentence", "token")
PREDICTORS = {
    "human": ("majority", "linear-m", "bilstm", "bert"),
    "sentence": ("majority", "linear-m", "linear-b", "bilstm", "bert"),
    "token": ("majority", "linear-b", "bilstm", "bert"),
}

_ADAMW_BERT = {"optimizer": "adamw", "lr": 3e-5, "batch_size": 32, "warmup_ratio": 0.1}
TRAINING_DEFAULTS = {
    "human": {"linear-m": {"optimizer": "adam", "lr": 1e-2, "epochs": 10},
              "bilstm": {"optimizer": "adam", "lr": 1e-3, "epochs": 10},
              "bert": {**_ADAMW_BERT, "epochs": 10}},
    "sentence": {"linear-m": {"optimizer": "adam", "lr": 1e-2, "epochs": 10},
                 "linear-b": {"optimizer": "adam", "lr": 1e-3, "epochs": 20},
                 "bilstm": {"optimizer": "adam", "lr": 1e-3, "epochs": 10},
                 "bert": {**_ADAMW_BERT, "epochs": 10}},
    "token": {"linear-b": {"optimizer": "adam", "lr": 1e-3, "epochs": 10},
              "bilstm": {"optimizer": "adam", "lr": 1e-3, "epochs": 10},
              "bert": {**_ADAMW_BERT, "epochs": 5}},
}
ANNOTATOR_DEFAULTS = {**_ADAMW_BERT, "epochs": 5}

SECTION_DEFAULTS = {
    "seeds": [1],
    "device": "auto",
    "backbones": {},
    "val_fraction": 0.1,          # carved from train for checkpoint selection (never test)
    "select_on": "mean_acc",      # the authors' key; or f1
    "target": "multilabel",       # or exit-layer
    "max_seq_len": 128,
    "training": {},               # <predictor>: {lr, epochs, batch_size, optimizer, warmup_ratio, ...}
    "human": {"source": "released", "test_per_class": 500, "train_per_class": None, "seed": 0,
              "predictors": list(PREDICTORS["human"]), "training": {}},
    "sentence": {"source": "annotate", "n_train": 8000, "predictors": list(PREDICTORS["sentence"]),
                 "annotator": {}, "training": {}},
    "token": {"enabled": True, "source": "annotate", "test_fraction": 0.2806, "seed": 0,
              "predictors": list(PREDICTORS["token"]), "annotator": {}, "training": {}},
}


def _merge(defaults: dict, given: dict) -> dict:
    out = copy.deepcopy(defaults)
    for key, value in (given or {}).items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


# The key each source cannot do without.
_NEEDS = {"released": "released_dir", "snli_dir": "path", "tsv": "path", "conll": "path", "synthetic": "size"}


def _check_source(key: str, spec) -> None:
    if not isinstance(spec, dict) or "source" not in spec:
        raise ValueError(f"config key '{key}': a mapping with a 'source' is required")
    need = _NEEDS.get(spec["source"])
    if need and spec.get(need) is None:
        raise ValueError(f"config key '{key}.{need}': required when source is {spec['source']!r}")


def section(config: dict) -> dict:
    """config["difficulty"] with defaults filled in; checks what the schema cannot (one line naming the key).

    A config without the section gets `enabled: False`: the rules exist but no target asks for them.
    """
    if "difficulty" not in config:
        return {**copy.deepcopy(SECTION_DEFAULTS), "enabled": False}
    dcfg = {**_merge(SECTION_DEFAULTS, config["difficulty"]), "enabled": True}
    for level in LEVELS:
        for name in dcfg[level]["predictors"]:
            if name not in PREDICTORS[level]:
                raise ValueError(f"config key 'difficulty.{level}.predictors': {name!r} is not one of {PREDICTORS[level]}")
    _check_source("difficulty.human", dcfg["human"])
    if dcfg["sentence"]["source"] == "released":
        _check_source("difficulty.sentence", dcfg["sentence"])
    else:
        for part in ("train_data", "label_data"):
            _check_source(f"difficulty.sentence.{part}", dcfg["sentence"].get(part))
    if dcfg["token"]["enabled"]:
        for part in ("train_data", "label_data"):
            _check_source(f"difficulty.token.{part}", dcfg["token"].get(part))
    return dcfg


def backbone_entry(dcfg: dict, config_backbones: dict, name: str) -> dict:
    """A backbone by name: difficulty.backbones first, then the top-level backbones section."""
    if name in dcfg.get("backbones", {}):
        return dcfg["backbones"][name]
    if name in (config_backbones or {}):
        return config_backbones[name]
    raise KeyError(f"config key 'difficulty.backbone': backbone {name!r} is in neither difficulty.backbones nor backbones")


def level_backbone(dcfg: dict, level: str, role: str = "predictor") -> str:
    """Backbone name of a level's predictors (role predictor) or annotator (role annotator)."""
    part = dcfg[level]
    name = part["annotator"].get("backbone") if role == "annotator" else None
    name = name or part.get("backbone") or dcfg.get("backbone")
    if not name:
        raise KeyError(f"config key 'difficulty.backbone': no backbone named for difficulty.{level}")
    return name


def backbone_param(dcfg: dict, config_backbones: dict, level: str, role: str = "predictor") -> dict:
    """The backbone a rule needs, as one plain dict {name, **entry} (a Snakemake param)."""
    name = level_backbone(dcfg, level, role)
    return {"name": name, **backbone_entry(dcfg, config_backbones, name)}


def spec_from(param: dict) -> BackboneSpec:
    entry = {k: v for k, v in param.items() if k != "name"}
    return BackboneSpec.from_config(param["name"], entry)


def data_params(dcfg: dict, level: str) -> dict:
    """A level's data-building keys only, so editing predictors or their training re-runs no dataset."""
    return {k: v for k, v in dcfg[level].items() if k not in ("predictors", "training", "annotator", "backbone")}


def training_settings(dcfg: dict, level: str, predictor: str) -> dict:
    """Authors' defaults <- difficulty.training.<predictor> <- difficulty.<level>.training.<predictor>."""
    base = {"max_seq_len": dcfg["max_seq_len"], **TRAINING_DEFAULTS[level].get(predictor, {})}
    base.update(dcfg.get("training", {}).get(predictor, {}))
    base.update(dcfg[level].get("training", {}).get(predictor, {}))
    return base


def annotator_settings(dcfg: dict, level: str) -> dict:
    """Training settings of a level's annotator (backbone and val_fraction are separate params)."""
    given = {k: v for k, v in dcfg[level]["annotator"].items() if k not in ("backbone", "val_fraction")}
    return {**ANNOTATOR_DEFAULTS, "max_seq_len": dcfg["max_seq_len"], **given}


def annotator_val_fraction(dcfg: dict, level: str) -> float:
    return dcfg[level]["annotator"].get("val_fraction", dcfg["val_fraction"])


# --- what the rules need (kept here: a .smk file holds rules only) ---------------------------------

def levels(dcfg: dict) -> list[str]:
    """Model-defined levels that run (the token level can be switched off)."""
    return ["sentence", "token"] if dcfg["token"]["enabled"] else ["sentence"]


def local_files(spec: dict) -> list[str]:
    """Local source files of one data entry: rule inputs, so editing them rebuilds the dataset."""
    source = (spec or {}).get("source")
    if source == "released":
        return [f"{spec['released_dir']}/{split}.txt" for split in ("train", "test")]
    if source in ("tsv", "conll"):
        return [spec["path"]]
    if source == "snli_dir":
        return [str(p) for p in sorted(Path(spec["path"]).glob("snli_1.0_*")) if p.suffix in (".txt", ".jsonl")]
    return []


def source_files(dcfg: dict, level: str) -> list[str]:
    data = dcfg[level]
    if not dcfg["enabled"]:
        return []
    if level == "human" or data.get("source") == "released":
        return local_files(data)
    if level == "token" and not data["enabled"]:
        return []
    return local_files(data.get("train_data")) + local_files(data.get("label_data"))


def run_options(dcfg: dict, level: str) -> dict:
    options = {"val_fraction": dcfg["val_fraction"], "device": dcfg["device"]}
    if level != "human":
        options.update(target=dcfg["target"], select_on=dcfg["select_on"])
    return options


def predictor_backbone(dcfg: dict, config_backbones: dict, level: str, predictor: str):
    if predictor == "majority" or not dcfg["enabled"]:
        return None
    return backbone_param(dcfg, config_backbones, level)


def annotator_backbone(dcfg: dict, config_backbones: dict, level: str):
    """None where no annotator runs (released sentence data, token level off)."""
    if not dcfg["enabled"] or (level == "sentence" and dcfg["sentence"]["source"] == "released") or (
            level == "token" and not dcfg["token"]["enabled"]):
        return None
    return backbone_param(dcfg, config_backbones, level, "annotator")
