"""Download the real tasks from the Hugging Face hub (needs network; the offline tests never call it).

The hub copies are not byte-identical to ELUE's files. Where the hub's test split has no labels
(GLUE SST-2 and MRPC), the labelled validation split serves as test and a dev split is carved from
train with a fixed permutation; IMDb gets the same dev carve to match ELUE's 20k/5k/25k split.
Differences from ELUE that affect comparisons with the paper:
- SST-2: GLUE's train is phrase-level (67,349 phrases), ELUE's is the SST sentence-level split
  (8,544 / 1,101 / 2,210); the carved dev holds phrases, the test holds GLUE's 872 sentences.
- MRPC: test = GLUE validation (408 pairs), not the 1,725-pair MRPC test that ELUE labels.
For exact ELUE numbers use `data.source: dir` with ELUE files.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from earlyexit.data.examples import Example
from earlyexit.data.tasks import get_task

log = logging.getLogger("earlyexit.data.hub")

# Seed of the permutation that carves dev out of train; fixed so every user gets the same split.
CARVE_SEED = 2021


@dataclass(frozen=True)
class HubSource:
    dataset: str
    config: str | None
    splits: dict[str, str]                  # suite split -> hub split
    text_a: str
    text_b: str | None
    label: str
    # "main" follows the dataset's latest commit: pin a commit sha (data.hub_revision) for exact reruns.
    revision: str = "main"
    label_map: dict | None = None           # hub label value -> class index (None: keep as is)
    label_scale: float = 1.0                # regression: multiply the hub score by this
    drop_labels: tuple = (-1,)              # hub rows without a gold label
    carve_dev: int = 0                      # >0: dev = this many rows carved out of the hub train split
    notes: str = field(default="", compare=False)


HUB_SOURCES: dict[str, HubSource] = {
    "SST-2": HubSource("stanfordnlp/sst2", None, {"train": "train", "test": "validation"},
                       "sentence", None, "label", carve_dev=872,
                       notes="GLUE test is unlabelled: test = validation, dev carved from train"),
    "IMDb": HubSource("stanfordnlp/imdb", "plain_text", {"train": "train", "test": "test"},
                      "text", None, "label", carve_dev=5000,
                      notes="ELUE split 20k/5k/25k: dev carved from the 25k train"),
    "SNLI": HubSource("stanfordnlp/snli", "plain_text",
                      {"train": "train", "dev": "validation", "test": "test"},
                      "premise", "hypothesis", "label",
                      notes="0 entailment, 1 neutral, 2 contradiction as in ELUE; -1 (no gold label) dropped"),
    "SciTail": HubSource("allenai/scitail", "tsv_format",
                         {"train": "train", "dev": "validation", "test": "test"},
                         "premise", "hypothesis", "label", label_map={"entails": 1, "neutral": 0},
                         notes="ELUE coding: 0 neutral, 1 entails"),
    "MRPC": HubSource("nyu-mll/glue", "mrpc", {"train": "train", "test": "validation"},
                      "sentence1", "sentence2", "label", carve_dev=408,
                      notes="GLUE test is unlabelled: test = validation, dev carved from train"),
    "STS-B": HubSource("sentence-transformers/stsb", None,
                       {"train": "train", "dev": "validation", "test": "test"},
                       "sentence1", "sentence2", "score", label_scale=5.0, drop_labels=(),
                       notes="scores normalised to 0-1 on the hub; x5 restores the STS 0-5 scale"),
}


def _rows_to_examples(source: HubSource, rows, regression: bool) -> list[Example]:
    texts_a = list(rows[source.text_a])     # list(): datasets may hand back a lazy column
    texts_b = list(rows[source.text_b]) if source.text_b else [None] * len(texts_a)
    examples = []
    for text_a, text_b, label in zip(texts_a, texts_b, list(rows[source.label]), strict=True):
        if label in source.drop_labels:
            continue
        if source.label_map is not None:
            label = source.label_map[label]
        label = float(label) * source.label_scale if regression else int(label)
        examples.append(Example(text_a, text_b, label))
    return examples


def convert_hub_splits(task_name: str, hub_splits) -> dict[str, list[Example]]:
    """Turn hub splits (mapping split name -> columns, e.g. a DatasetDict) into train/dev/test."""
    source, task = HUB_SOURCES[task_name], get_task(task_name)
    out = {split: _rows_to_examples(source, hub_splits[hub_split], task.is_regression)
           for split, hub_split in source.splits.items()}
    if source.carve_dev:
        train = out["train"]
        order = np.random.default_rng(CARVE_SEED).permutation(len(train))
        dev_index = set(order[:source.carve_dev].tolist())
        # Both parts keep the hub's row order.
        out["dev"] = [e for i, e in enumerate(train) if i in dev_index]
        out["train"] = [e for i, e in enumerate(train) if i not in dev_index]
    return {split: out[split] for split in ("train", "dev", "test")}


def download_task(task_name: str, cache_dir: str | os.PathLike | None, revision: str | None = None
                  ) -> dict[str, list[Example]]:
    """Download `task_name` from the hub (cached in `cache_dir`) and return train/dev/test Examples."""
    if task_name not in HUB_SOURCES:
        raise ValueError(f"task {task_name!r} has no hub source (hub tasks: {', '.join(HUB_SOURCES)})")
    source = HUB_SOURCES[task_name]
    import datasets     # imported here: the offline code paths never need it

    revision = revision or source.revision
    log.info("loading %s (config %s, revision %s)", source.dataset, source.config, revision)
    try:
        hub_splits = datasets.load_dataset(source.dataset, source.config, revision=revision,
                                           cache_dir=str(cache_dir) if cache_dir else None)
    except Exception as error:  # noqa: BLE001 - connection, DNS, hub and offline-mode errors all end here
        log.debug("load_dataset failed: %r", error)
        raise RuntimeError(f"cannot download {source.dataset} (no network?): set data.source: dir and "
                           f"data.data_dir to local ELUE files, or use the demo preset") from error
    return convert_hub_splits(task_name, hub_splits)
