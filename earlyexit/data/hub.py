"""Rebuild ELUE's task splits from the Hugging Face hub (needs network; the offline tests feed
`convert_hub_splits` small in-memory splits instead).

Each `HubSource` names the hub dataset and columns that hold ELUE's data, how labels are mapped,
and ELUE's row (and, where known, class) counts per split. `convert_hub_splits` checks every split
against those counts and stops with a one-line error on a mismatch, so a hub copy that drifted
from ELUE never trains a model silently. Where the hub cannot rebuild a split at all, the source
says why (`unavailable`) and loading stops before any download: use `data.sources: {<task>: dir}`
with ELUE files for that task.

- SST-2: ELUE's is the SST sentence-level split (8,544 / 1,101 / 2,210), not GLUE's phrase-level
  SST-2. `stanfordnlp/sst` (config default) holds those sentences with a float sentiment score in
  [0, 1] (SST's classes: very negative [0, 0.2], negative (0.2, 0.4], neutral (0.4, 0.6], positive
  (0.6, 0.8], very positive (0.8, 1]). ELUE keeps the neutral sentences and splits them at 0.5:
  label 1 iff score > 0.5 (the SST-5 class counts leave 934 of train's 1,624 neutral sentences
  in class 0 and 690 in class 1, so a score of exactly 0.5 must be negative). The class counts
  (train 4,244 / 4,300) are checked, which tests this reading. The repo is a loading script, which
  recent `datasets` refuse, so it is read from the hub's parquet conversion (refs/convert/parquet).
- MRPC: train/dev = GLUE's (3,668 / 408). The test split (1,725 labelled pairs, the original MRPC
  test set) cannot be rebuilt: GLUE's test labels are hidden (-1) and no hub copy with them is known.
- SNLI: the official splits minus the pairs without a gold label (-1): 549,367 / 9,842 / 9,824.
- SciTail: `snli_format` (23,596 / 1,304 / 2,126; `tsv_format` has only 23,097 train rows);
  ELUE codes 0 neutral, 1 entails.
- STS-B: `sentence-transformers/stsb` has the labelled test split; its scores are normalised to
  [0, 1], x5 restores the STS 0-5 scale.
- IMDb: ELUE's 20k / 5k / 25k: dev is carved from the 25k train with a fixed seed. The counts match
  ELUE's, but which 5k reviews form dev is ours, not ELUE's (ELUE's carve is not published).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from earlyexit.data.examples import Example
from earlyexit.data.tasks import get_task

log = logging.getLogger("earlyexit.data.hub")

# Seed of the permutation that carves dev out of train; fixed so every user gets the same split.
CARVE_SEED = 2021
SPLITS = ("train", "dev", "test")


class HubSplitError(ValueError):
    """A hub split that does not (or cannot) reproduce ELUE's; the message is one line."""


@dataclass(frozen=True)
class HubSource:
    dataset: str
    config: str | None
    splits: dict[str, str]                  # suite split -> hub split (carved dev and unavailable splits absent)
    text_a: str
    text_b: str | None
    label: str
    counts: dict[str, int]                  # ELUE's rows per suite split, checked at load
    label_counts: dict[str, dict[int, int]] = field(default_factory=dict)   # ELUE's class counts, where known
    # "main" follows the dataset's latest commit: pin a commit sha (data.hub_revision) for exact reruns.
    revision: str = "main"
    label_map: dict | None = None           # hub label value -> class index (None: keep as is)
    label_scale: float = 1.0                # regression: multiply the hub score by this
    positive_above: float | None = None     # binarise a score: class 1 iff score > this
    drop_labels: tuple = (-1,)              # hub rows without a gold label
    carve_dev: int = 0                      # >0: dev = this many rows carved out of the hub train split
    unavailable: dict[str, str] = field(default_factory=dict)   # suite split -> why the hub cannot rebuild it
    notes: str = field(default="", compare=False)


HUB_SOURCES: dict[str, HubSource] = {
    "SST-2": HubSource("stanfordnlp/sst", "default",
                       {"train": "train", "dev": "validation", "test": "test"},
                       "sentence", None, "label", revision="refs/convert/parquet", positive_above=0.5,
                       counts={"train": 8544, "dev": 1101, "test": 2210},
                       label_counts={"train": {0: 4244, 1: 4300}, "dev": {0: 558, 1: 543},
                                     "test": {0: 1143, 1: 1067}},
                       notes="SST sentence-level split; label 1 iff sentiment score > 0.5"),
    "IMDb": HubSource("stanfordnlp/imdb", "plain_text", {"train": "train", "test": "test"},
                      "text", None, "label", carve_dev=5000,
                      counts={"train": 20000, "dev": 5000, "test": 25000},
                      label_counts={"test": {0: 12500, 1: 12500}},
                      notes="ELUE split 20k/5k/25k: dev carved from the 25k train (our seed, not ELUE's carve)"),
    "SNLI": HubSource("stanfordnlp/snli", "plain_text",
                      {"train": "train", "dev": "validation", "test": "test"},
                      "premise", "hypothesis", "label",
                      counts={"train": 549367, "dev": 9842, "test": 9824},
                      label_counts={"dev": {0: 3329, 1: 3235, 2: 3278}, "test": {0: 3368, 1: 3219, 2: 3237}},
                      notes="0 entailment, 1 neutral, 2 contradiction as in ELUE; -1 (no gold label) dropped"),
    "SciTail": HubSource("allenai/scitail", "snli_format",
                         {"train": "train", "dev": "validation", "test": "test"},
                         "sentence1", "sentence2", "gold_label",
                         # snli_format spells the class "entailment", tsv_format "entails".
                         label_map={"entailment": 1, "entails": 1, "neutral": 0},
                         counts={"train": 23596, "dev": 1304, "test": 2126},
                         label_counts={"dev": {0: 647, 1: 657}, "test": {0: 1284, 1: 842}},
                         notes="ELUE coding: 0 neutral, 1 entails"),
    "MRPC": HubSource("nyu-mll/glue", "mrpc", {"train": "train", "dev": "validation"},
                      "sentence1", "sentence2", "label",
                      counts={"train": 3668, "dev": 408, "test": 1725},
                      label_counts={"train": {0: 1194, 1: 2474}, "dev": {0: 129, 1: 279},
                                    "test": {0: 578, 1: 1147}},
                      unavailable={"test": "ELUE's test is the labelled 1,725-pair MRPC test set; GLUE's "
                                           "copy on the hub hides its labels (-1) and no labelled hub copy is known"},
                      notes="train/dev = GLUE's; the labelled test needs ELUE files"),
    "STS-B": HubSource("sentence-transformers/stsb", None,
                       {"train": "train", "dev": "validation", "test": "test"},
                       "sentence1", "sentence2", "score", label_scale=5.0, drop_labels=(),
                       counts={"train": 5749, "dev": 1500, "test": 1379},
                       notes="scores normalised to 0-1 on the hub; x5 restores the STS 0-5 scale"),
}


def check_rebuildable(task_name: str, source: HubSource | None = None) -> None:
    """Raise HubSplitError (one line) when a split of `task_name` cannot come from the hub."""
    source = source or HUB_SOURCES[task_name]
    if source.unavailable:
        split, why = next(iter(source.unavailable.items()))
        raise HubSplitError(f"{task_name} {split} split cannot be rebuilt from the hub: {why}; "
                            f"use data.sources: {{{task_name}: dir}} with ELUE files in data.data_dir")


def _label(source: HubSource, task_name: str, hub_split: str, row: int, value, regression: bool):
    if source.label_map is not None:
        if value not in source.label_map:
            raise HubSplitError(f"{task_name} {hub_split} row {row}: label {value!r} has no mapping "
                                f"(known: {', '.join(map(repr, source.label_map))})")
        value = source.label_map[value]
    if source.positive_above is not None:
        return int(float(value) > source.positive_above)
    if regression:
        # Round away the float noise of the hub's /5 normalisation (5.000000000000001 > 5).
        return round(float(value) * source.label_scale, 6)
    return int(value)


def _rows_to_examples(task_name: str, source: HubSource, hub_split: str, rows, regression: bool) -> list[Example]:
    texts_a = list(rows[source.text_a])     # list(): datasets may hand back a lazy column
    texts_b = list(rows[source.text_b]) if source.text_b else [None] * len(texts_a)
    examples = []
    for row, (text_a, text_b, value) in enumerate(zip(texts_a, texts_b, list(rows[source.label]), strict=True)):
        if value in source.drop_labels:
            continue
        examples.append(Example(text_a, text_b, _label(source, task_name, hub_split, row, value, regression)))
    return examples


def _check_counts(task_name: str, source: HubSource, split: str, examples: list[Example]) -> None:
    where = f"{source.dataset} ({source.splits.get(split, source.splits['train'])})"
    advice = f"pin data.hub_revision, or use data.sources: {{{task_name}: dir}} with ELUE files"
    expected = source.counts[split]
    if len(examples) != expected:
        raise HubSplitError(f"{task_name} {split}: expected {expected} examples as in ELUE, found "
                            f"{len(examples)} in {where}; {advice}")
    if split in source.label_counts:
        wanted = dict(sorted(source.label_counts[split].items()))
        found = dict(sorted(Counter(e.label for e in examples).items()))
        if found != wanted:
            raise HubSplitError(f"{task_name} {split}: expected ELUE's label counts {wanted}, found {found} "
                                f"in {where}; {advice}")


def convert_hub_splits(task_name: str, hub_splits, source: HubSource | None = None) -> dict[str, list[Example]]:
    """Turn hub splits (mapping split name -> columns, e.g. a DatasetDict) into train/dev/test and
    check each against ELUE's counts. `source` replaces HUB_SOURCES[task_name] (tests use it)."""
    source = source or HUB_SOURCES[task_name]
    check_rebuildable(task_name, source)
    task = get_task(task_name)
    out = {split: _rows_to_examples(task_name, source, hub_split, hub_splits[hub_split], task.is_regression)
           for split, hub_split in source.splits.items()}
    if source.carve_dev:
        train = out["train"]
        order = np.random.default_rng(CARVE_SEED).permutation(len(train))
        dev_index = set(order[:source.carve_dev].tolist())
        # Both parts keep the hub's row order.
        out["dev"] = [e for i, e in enumerate(train) if i in dev_index]
        out["train"] = [e for i, e in enumerate(train) if i not in dev_index]
    for split in SPLITS:
        _check_counts(task_name, source, split, out[split])
    return {split: out[split] for split in SPLITS}


def download_task(task_name: str, cache_dir: str | os.PathLike | None, revision: str | None = None
                  ) -> dict[str, list[Example]]:
    """Download `task_name` from the hub (cached in `cache_dir`) and return train/dev/test Examples."""
    if task_name not in HUB_SOURCES:
        raise ValueError(f"task {task_name!r} has no hub source (hub tasks: {', '.join(HUB_SOURCES)})")
    source = HUB_SOURCES[task_name]
    check_rebuildable(task_name)            # before a download that could not be used
    import datasets     # imported here: the offline code paths never need it

    revision = revision or source.revision
    log.info("loading %s (config %s, revision %s)", source.dataset, source.config, revision)
    try:
        hub_splits = datasets.load_dataset(source.dataset, source.config, revision=revision,
                                           cache_dir=str(cache_dir) if cache_dir else None)
    except Exception as error:  # noqa: BLE001 - connection, DNS, hub and offline-mode errors all end here
        log.debug("load_dataset failed: %r", error)
        raise RuntimeError(f"cannot download {source.dataset} (no network?): set data.sources: "
                           f"{{{task_name}: dir}} and data.data_dir to local ELUE files, or use the demo preset") from error
    return convert_hub_splits(task_name, hub_splits)
