"""What each workflow rule does, as plain functions (the scripts only unpack `snakemake`).

Arguments are the narrow pieces of the `difficulty:` config each rule needs (see
difficulty.settings): `data` is a level's data keys, `backbone` a {name, **entry} dict,
`training` one predictor's settings (difficulty.settings.training_settings).
"""

from __future__ import annotations

import logging
from pathlib import Path

from earlyexit.plumbing.files import atomic_write_json, atomic_write_text, read_json

from difficulty import datasets, formats, settings

log = logging.getLogger("difficulty.steps")


def _describe(spec: dict) -> dict:
    """A data source as recorded in counts.json; local files get their sha256."""
    out = dict(spec)
    path = spec.get("path")
    if path and Path(path).is_file():
        out["sha256"] = formats.sha256(path)
    return out


def _released(folder) -> dict:
    folder = Path(folder)
    return {"source": "released", "path": str(folder),
            "sha256": {s: formats.sha256(folder / f"{s}.txt") for s in ("train", "test")}}


def _write_pairs(pairs, path):
    atomic_write_text(path, formats.format_pairs(pairs))


# --- datasets ------------------------------------------------------------------------------------

def build_human_dataset(data: dict, out_train, out_test, out_counts) -> None:
    if data["source"] == "released":
        train, test = datasets.read_released(data["released_dir"], "human")
        counts = {"source": _released(data["released_dir"]), **datasets.human_counts(train, test)}
    else:
        spec = {k: v for k, v in data.items() if k in ("source", "path", "hub_id", "revision", "cache_dir", "size",
                                                       "ambiguous_fraction", "seed")}
        spec["splits"] = ["train", "validation", "test"]  # hub: pool all splits, as the authors did
        rows = datasets.load_nli(spec, data["seed"], keep_no_majority=True)
        train, test, counts = datasets.build_human(rows, data["test_per_class"], data["train_per_class"], data["seed"])
        counts = {"source": _describe(spec), **counts}
    _write_pairs(train, out_train)
    _write_pairs(test, out_test)
    atomic_write_json(out_counts, counts)
    log.info("human-defined: %d train / %d test rows", len(train), len(test))


def build_sentence_dataset(data: dict, backbone: dict, annotator: dict, val_fraction: float, device: str,
                           out_train, out_test, out_counts, threads: int | None = None) -> None:
    if data["source"] == "released":
        train, test = datasets.read_released(data["released_dir"], "model")
        counts = {"source": _released(data["released_dir"])}
    else:
        _limit_threads(threads)
        from difficulty import annotate

        seed = data["seed"]
        train_rows = datasets.load_nli(data["train_data"], seed)
        label_rows = datasets.load_nli(data["label_data"], seed + 1)
        where = "difficulty.sentence.annotator"
        model, tokenizer, report = annotate.train_annotator(
            train_rows, spec=settings.spec_from(backbone), token_level=False, settings=annotator,
            val_fraction=val_fraction, seed=seed, device=device, where=where)
        labelled = annotate.label_pairs(model, tokenizer, label_rows, annotator, device)
        train, test = datasets.split_in_order(labelled, data["n_train"])
        counts = {"source": {"source": "annotate", "train_data": _describe(data["train_data"]),
                             "train_rows": len(train_rows), "label_data": _describe(data["label_data"]),
                             "label_rows": len(label_rows)},
                  "annotator": report}
    counts.update(train=formats.summarize_layers(train), test=formats.summarize_layers(test))
    _write_pairs(train, out_train)
    _write_pairs(test, out_test)
    atomic_write_json(out_counts, counts)
    log.info("model-defined (sentence): %d train / %d test rows, %d layers", len(train), len(test), train.labels.shape[1])


def build_token_dataset(data: dict, backbone: dict, annotator: dict, val_fraction: float, device: str,
                        out_train, out_test, out_counts, threads: int | None = None) -> None:
    _limit_threads(threads)
    from difficulty import annotate

    seed = data["seed"]
    train_rows = datasets.load_ner(data["train_data"], seed)
    label_rows = datasets.load_ner(data["label_data"], seed + 1)
    tag_ids = annotate.tag_vocabulary(train_rows, label_rows)
    where = "difficulty.token.annotator"
    model, tokenizer, report = annotate.train_annotator(
        train_rows, spec=settings.spec_from(backbone), token_level=True, settings=annotator,
        val_fraction=val_fraction, seed=seed, device=device, tag_ids=tag_ids, where=where)
    labelled = annotate.label_tokens(model, tokenizer, label_rows, annotator, tag_ids, device)
    train, test = datasets.split_shuffled(labelled, data["test_fraction"], seed)
    counts = {"source": {"train_data": _describe(data["train_data"]), "train_rows": len(train_rows),
                         "label_data": _describe(data["label_data"]), "label_rows": len(label_rows)},
              "tags": tag_ids, "annotator": report,
              "train": formats.summarize_layers(train), "test": formats.summarize_layers(test)}
    atomic_write_text(out_train, formats.format_tokens(train))
    atomic_write_text(out_test, formats.format_tokens(test))
    atomic_write_json(out_counts, counts)
    log.info("model-defined (token): %d train / %d test rows", len(train), len(test))


def read_dataset(level: str, path):
    if level == "token":
        return formats.read_tokens(path)
    return formats.read_pairs(path, multilabel=level == "sentence")


# --- predictors ------------------------------------------------------------------------------------

def _limit_threads(threads: int | None) -> None:
    # torch is imported here, not by the scripts, so a Majority job never loads it.
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def run_difficulty_predictor(level: str, predictor: str, seed: int, backbone: dict | None, training: dict,
                             options: dict, train_path, test_path, out_json, threads: int | None = None) -> None:
    """options: target, select_on, val_fraction, device."""
    train, test = read_dataset(level, train_path), read_dataset(level, test_path)
    layers = train.n_layers if level == "token" else int(train.labels.shape[1])
    record = {"predictor": predictor, "level": level, "seed": seed, "layers": layers, "target": options["target"],
              "select_on": options["select_on"], "data": {"train": str(train_path), "test": str(test_path)}}
    if predictor == "majority":
        from difficulty.baseline import majority_run

        record.update(majority_run(train, test, val_fraction=options["val_fraction"], seed=seed,
                                   select_on=options["select_on"]))
    else:
        _limit_threads(threads)
        from difficulty.predictors import run_predictor

        record.update(run_predictor(predictor, train, test, spec=settings.spec_from(backbone), settings=training,
                                    target=options["target"], select_on=options["select_on"],
                                    val_fraction=options["val_fraction"], seed=seed, device=options["device"],
                                    where=f"difficulty.{level}.training.{predictor}"))
    atomic_write_json(out_json, record)
    log.info("%s %s seed %d: test P %.3f R %.3f F1 %.3f", level, predictor, seed, record["test"]["precision"],
             record["test"]["recall"], record["test"]["f1"])


def run_human_predictor(predictor: str, seed: int, backbone: dict | None, training: dict, options: dict,
                        train_path, test_path, out_json, threads: int | None = None) -> None:
    """options: val_fraction, device."""
    from difficulty.baseline import chance_test, human_majority_run

    train, test = read_dataset("human", train_path), read_dataset("human", test_path)
    record = {"predictor": predictor, "level": "human", "seed": seed,
              "data": {"train": str(train_path), "test": str(test_path)}}
    if predictor == "majority":
        record.update(human_majority_run(train, test, val_fraction=options["val_fraction"], seed=seed))
    else:
        _limit_threads(threads)
        from difficulty.human import run_human

        record.update(run_human(predictor, train, test, spec=settings.spec_from(backbone), settings=training,
                                val_fraction=options["val_fraction"], seed=seed, device=options["device"],
                                where=f"difficulty.human.training.{predictor}"))
    record["chance_test"] = chance_test(record.pop("test_predictions"), test.labels)
    atomic_write_json(out_json, record)
    log.info("human %s seed %d: test accuracy %.3f (p=%.3g)", predictor, seed, record["test"]["accuracy"],
             record["chance_test"]["p_value"])


# --- tables and figures (one name per artifact: rule table_<name> / figure_<name>, see difficulty.smk) ---

def _synthetic_levels(counts_paths: dict | None) -> set:
    from difficulty import tables

    return {level for level, path in (counts_paths or {}).items() if tables.is_synthetic(read_json(path))}


def write_difficulty_model(run_paths, published_path, preset: str, out_csv, out_md, out_tex,
                           counts_paths: dict | None = None) -> None:
    """The paper's model-defined difficulty table: ours beside the published P / R / F1.
    counts_paths: level -> the dataset's counts.json, which says whether it is synthetic (then no
    published numbers are shown for that level)."""
    from analysis.published import load_published
    from analysis.table_writer import write_table
    from difficulty import tables

    published = tables.published_cells(load_published(published_path, table="difficulty"))
    synthetic = _synthetic_levels(counts_paths)
    frame = tables.difficulty_frame([read_json(p) for p in run_paths], published, synthetic)
    write_table(frame.round(3), tables.difficulty_layout(frame, preset, synthetic), out_csv, out_md, out_tex,
                source=f"difficulty/tables.py from the difficulty runs of preset {preset}")


def write_difficulty_human(run_paths, preset: str, out_csv, out_md, out_tex, counts_path=None) -> None:
    """The human-defined difficulty table: test accuracy against chance (counts_path: the dataset's
    counts.json, which says whether it is synthetic)."""
    from analysis.table_writer import write_table
    from difficulty import tables

    frame = tables.human_frame([read_json(p) for p in run_paths])
    synthetic = "human" in _synthetic_levels({"human": counts_path} if counts_path else None)
    write_table(frame.round(4), tables.human_layout(frame, preset, synthetic), out_csv, out_md, out_tex,
                source=f"difficulty/tables.py from the human-difficulty runs of preset {preset}")


def plot_difficulty_human_accuracy(run_paths, out_png, out_pdf) -> None:
    """Per-epoch train and test accuracy of the human-difficulty predictors."""
    from analysis.figure_writer import save_figure
    from difficulty import tables

    save_figure(tables.plot_human_curves([read_json(p) for p in run_paths]), out_png, out_pdf)


def plot_difficulty_layer_labels(split_paths: dict, out_png, out_pdf) -> None:
    """The per-layer label distribution of the model-defined datasets; split_paths: level -> {split: path}."""
    from analysis.figure_writer import save_figure
    from difficulty import tables

    data = {level: {split: read_dataset(level, path) for split, path in splits.items()}
            for level, splits in split_paths.items()}
    save_figure(tables.plot_layer_labels(data), out_png, out_pdf)

