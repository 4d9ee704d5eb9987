"""The `difficulty:` config section: checks the schema cannot express, backbone look-up, settings per rule.

The workflow reads only config["difficulty"] (and config["backbones"] for a backbone named there).
Every default lives in workflow/schemas/config.schema.yaml, so the validated config is complete and
this module only reads it; code that builds a config itself goes through `validated` first.
"""

from __future__ import annotations

from pathlib import Path

from earlyexit.models.backbones import BackboneSpec

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"

LEVELS = ("human", "sentence", "token")
PREDICTORS = {
    "human": ("majority", "linear-m", "bilstm", "bert"),
    "sentence": ("majority", "linear-m", "linear-b", "bilstm", "bert"),
    "token": ("majority", "linear-b", "bilstm", "bert"),
}
# Predictors that fine-tune a BERT-sized backbone (the rules give them a GPU and more memory).
BERT_SIZED = ("bert", "linear-b")


def validated(config: dict, schema: Path = SCHEMA) -> dict:
    """Check config["difficulty"] against the schema and fill its defaults in place, as the workflow's
    `validate(config, schema)` does; for code that builds a config without the workflow (tests).
    Only the difficulty section is validated, so the rest of the config may be absent. Returns `config`."""
    from earlyexit.plumbing.schema_sections import fill_section

    fill_section(config, "difficulty", schema, absent={"enabled": False})
    return config


# The key each source cannot do without.
_NEEDS = {"released": "released_dir", "snli_dir": "path", "tsv": "path", "conll": "path", "synthetic": "size"}


def _check_source(key: str, spec) -> None:
    if not isinstance(spec, dict) or "source" not in spec:
        raise ValueError(f"config key '{key}': a mapping with a 'source' is required")
    need = _NEEDS.get(spec["source"])
    if need and spec.get(need) is None:
        raise ValueError(f"config key '{key}.{need}': required when source is {spec['source']!r}")


def section(config: dict) -> dict:
    """The validated config["difficulty"]; checks what the schema cannot (one line naming the key).

    The schema fills the section (with `enabled: false` when the config has none), so a config that
    lacks it was never validated.
    """
    if "difficulty" not in config:
        raise ValueError("config key 'difficulty': missing; validate the config with the schema first "
                         "(the workflow does; elsewhere difficulty.settings.validated)")
    dcfg = config["difficulty"]
    if not dcfg["enabled"]:
        return dcfg
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


def _unknown_backbone(key: str, name: str) -> str:
    return f"config key '{key}': backbone {name!r} is in neither difficulty.backbones nor backbones"


def config_errors(config: dict) -> list[str]:
    """The study's own config checks (the workflow runs them after the library's config_errors; the
    library does not import the study)."""
    return backbone_errors(config.get("difficulty"), config.get("backbones"))


def backbone_errors(dcfg: dict | None, config_backbones: dict | None) -> list[str]:
    """One line per backbone name of the section that names no backbone, keyed where it is given.

    Runs at config time, before the schema fills defaults (workflow/rules/common.smk), so the
    workflow stops with this line instead of a traceback from inside difficulty.smk."""
    if not dcfg or dcfg.get("enabled", True) is False:
        return []
    known = set(dcfg.get("backbones") or {}) | set(config_backbones or {})
    named = [("difficulty.backbone", dcfg.get("backbone"))]
    for level in LEVELS:
        part = dcfg.get(level) or {}
        named.append((f"difficulty.{level}.backbone", part.get("backbone")))
        named.append((f"difficulty.{level}.annotator.backbone", (part.get("annotator") or {}).get("backbone")))
    return [_unknown_backbone(key, name) for key, name in named if name is not None and name not in known]


def backbone_entry(dcfg: dict, config_backbones: dict, name: str) -> dict:
    """A backbone by name: difficulty.backbones first, then the top-level backbones section."""
    if name in dcfg.get("backbones", {}):
        return dcfg["backbones"][name]
    if name in (config_backbones or {}):
        return config_backbones[name]
    raise KeyError(_unknown_backbone("difficulty.backbone", name))


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
    """difficulty.<level>.training.<predictor> (loop and model settings) with the study's max_seq_len;
    {} for Majority, which trains nothing."""
    entry = dcfg[level]["training"].get(predictor)
    return {} if entry is None else {**entry, "max_seq_len": dcfg["max_seq_len"]}


def annotator_settings(dcfg: dict, level: str) -> dict:
    """Training settings of a level's annotator (backbone and val_fraction are separate params)."""
    given = {k: v for k, v in dcfg[level]["annotator"].items() if k not in ("backbone", "val_fraction")}
    return {**given, "max_seq_len": dcfg["max_seq_len"]}


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


# Fixed for the whole study, not settings: one evaluation per epoch (its figures plot one point per
# epoch), fp32, and test never looked at during training.
STUDY_LOOP = {"evals_per_epoch": 1, "bf16": False, "cpu_bf16": False, "track_best_on_test": False}


def loop_config(settings: dict, where: str):
    """The loop settings (a TrainConfig) of a predictor or annotator: validated config values + the
    study's fixed choices; an unknown or missing key raises ValueError naming `where.<key>`."""
    from earlyexit.training.loop import TrainConfig   # torch: not at the Snakefile's parse time

    return TrainConfig.from_config({**settings, **STUDY_LOOP}, where)
