"""Summarization data: the normalized source/target split format, the synthetic stand-in task,
and the hub converters of the paper's four datasets (Reddit TIFU, CNN/DailyMail, CSL, TTNews).

Normalized split = UTF-8 TSV, header `source<TAB>target`, one pair per line. Targets keep their
sentence breaks (ROUGE-Lsum scores newline-separated sentences), so `\\`, TAB and newline inside a
text are written as the escapes `\\\\`, `\\t`, `\\n` and read back exactly.
"""

from __future__ import annotations

import logging
import random
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from earlyexit.data.examples import DataFormatError, iter_tsv_lines
from earlyexit.plumbing.files import atomic_path

log = logging.getLogger("earlyexit.data.summarization")
HEADER = ("source", "target")
SPLITS = ("train", "dev", "test")


class Pair(NamedTuple):
    source: str
    target: str


# ---------------------------------------------------------------- the normalized format

_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": ""}
_UNESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n"}


def escape(text: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def unescape(text: str) -> str:
    return re.sub(r"\\[\\tn]", lambda m: _UNESCAPES[m.group(0)], text)


def write_pairs(path: str | Path, pairs: Iterable[Pair]) -> None:
    lines = ["\t".join(HEADER)] + [f"{escape(p.source)}\t{escape(p.target)}" for p in pairs]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_pairs(path: str | Path) -> list[Pair]:
    lines = iter_tsv_lines(path)
    number, header = next(lines)
    if tuple(header.split("\t")) != HEADER:
        raise DataFormatError(path, number, f"header is {header!r}, expected {chr(9).join(HEADER)!r}")
    pairs = []
    for number, line in lines:
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataFormatError(path, number, f"expected 2 tab-separated columns, found {len(fields)}")
        source, target = map(unescape, fields)
        if not source.strip() or not target.strip():
            raise DataFormatError(path, number, "empty source or target")
        pairs.append(Pair(source, target))
    if not pairs:
        raise DataFormatError(path, None, "no pairs after the header")
    return pairs


def first_sentence(text: str) -> str:
    """The lead-1 summary: the first sentence of a source (split after . ! ? or a line break)."""
    return re.split(r"(?<=[.!?。！？])\s*|\n", text.strip(), maxsplit=1)[0].strip()


# ---------------------------------------------------------------- synth-summary

# Lower-case English words an uncased WordPiece tokenizer keeps whole. The summary is the one source
# sentence that carries the marker word: a model must find it (its position is random, so copying
# the first sentence is right only now and then) and copy it.
MARKER = "important"
_SUBJECTS = ("the dog", "a cat", "the teacher", "my brother", "the farmer", "a child", "the doctor", "her friend",
             "the king", "a bird", "the pilot", "our team")
_VERBS = ("found", "painted", "carried", "sold", "cleaned", "lost", "opened", "built", "watched", "moved")
_ADJECTIVES = ("red", "old", "small", "green", "heavy", "new", "broken", "wooden", "empty", "bright")
_OBJECTS = ("box", "car", "house", "boat", "door", "chair", "book", "garden", "bridge", "window")
_PLACES = ("in the city", "near the river", "at night", "in the morning", "by the lake", "after lunch")


def _synthetic_sentence(rng: random.Random) -> list[str]:
    words = [*rng.choice(_SUBJECTS).split(), rng.choice(_VERBS), "the", rng.choice(_ADJECTIVES), rng.choice(_OBJECTS)]
    if rng.random() < 0.4:
        words += rng.choice(_PLACES).split()
    return words


def _synthetic_pair(rng: random.Random) -> Pair:
    sentences = [_synthetic_sentence(rng) for _ in range(rng.randint(3, 5))]
    key = rng.randrange(len(sentences))
    summary = " ".join(sentences[key]) + " ."
    sentences[key] = [MARKER, *sentences[key]]
    return Pair(" ".join(" ".join(s) + " ." for s in sentences), summary)


def make_synthetic_summarization(sizes: dict[str, int], seed: int) -> dict[str, list[Pair]]:
    """synth-summary, a synthetic stand-in for CNN/DailyMail: every split from its own seeded rng,
    no source shared between splits."""
    seen: set[str] = set()
    splits = {}
    for split in [s for s in SPLITS if s in sizes]:
        rng = random.Random(zlib.crc32(f"synth-summary|{split}|{seed}".encode()))
        pairs = []
        while len(pairs) < sizes[split]:
            pair = _synthetic_pair(rng)
            if pair.source not in seen:
                seen.add(pair.source)
                pairs.append(pair)
        splits[split] = pairs
    return splits


# ---------------------------------------------------------------- the paper's datasets

@dataclass(frozen=True)
class SummarizationSource:
    """Where a summarization task's pairs come from on the hub, and the rows each split must have."""

    dataset: str
    config: str | None
    revision: str                        # pinned (a commit sha or a ref that does not move)
    source: str                          # column of the document
    target: str                          # column of the summary
    splits: dict[str, str]               # suite split -> hub split; one hub split with `carve`: carved
    counts: dict[str, int]               # rows per suite split, checked at load
    carve: tuple[float, float] | None = None   # (train, dev) shares of one hub split; test = the rest
    total: int | None = None             # rows of the carved hub split (checked before carving)
    unavailable: str = ""                # why the hub cannot provide it (use data.sources: {task: dir})
    notes: str = field(default="", compare=False)


CARVE_SEED = 2021
HUB_SUMMARIZATION: dict[str, SummarizationSource] = {
    # Non-anonymised CNN/DailyMail 3.0.0 (baselines-spec 4); highlights are one sentence per line.
    "CNN-DM": SummarizationSource("abisee/cnn_dailymail", "3.0.0", "refs/convert/parquet", "article", "highlights",
                                  {"train": "train", "dev": "validation", "test": "test"},
                                  {"train": 287113, "dev": 13368, "test": 11490}),
    # Reddit TIFU "long" (post -> TL;DR, 42,139 pairs) has no official split: a fixed seeded 80/10/10.
    "Reddit-TIFU": SummarizationSource("ctr4si/reddit_tifu", "long", "refs/convert/parquet", "documents", "tldr",
                                       {"train": "train"}, {"train": 33711, "dev": 4213, "test": 4215},
                                       carve=(0.8, 0.1), total=42139,
                                       notes="no official split; seeded 80/10/10 carve (CARVE_SEED)"),
    # CSL (abstract -> title) [unverified: the CPT repo's CSL generation split is not on the hub]: the
    # neuclir copy of the full CSL corpus, carved 80/10/10 with the fixed seed.
    "CSL": SummarizationSource("neuclir/csl", None, "4eb98132bef11b4ff501acd092b2efa35c71eae5", "abstract", "title",
                               {"train": "csl"}, {}, carve=(0.8, 0.1),
                               notes="[unverified] full CSL corpus, not the CPT repo's benchmark split; "
                                     "counts logged, not checked"),
    "TTNews": SummarizationSource("", None, "", "article", "summarization", {}, {},
                                  unavailable="TTNews (NLPCC 2017 shared task 3) is not on the HF hub: give local "
                                              "files with data.sources: {TTNews: dir} (<data_dir>/TTNews/"
                                              "{train,dev,test}.json, the CPT repo's format)"),
}


class SummarizationSplitError(ValueError):
    """A hub or local split that does not match what the suite expects; one line."""


def _carve(rows: list, shares: tuple[float, float]) -> dict[str, list]:
    order = np.random.default_rng(CARVE_SEED).permutation(len(rows))
    n_train, n_dev = int(shares[0] * len(rows)), int(shares[1] * len(rows))
    cut = {"train": order[:n_train], "dev": order[n_train:n_train + n_dev], "test": order[n_train + n_dev:]}
    return {split: [rows[i] for i in index] for split, index in cut.items()}


def convert_hub_pairs(task: str, hub_splits: dict[str, list[dict]]) -> dict[str, list[Pair]]:
    """Hub rows (hub split -> list of column dicts) -> the suite's splits, counts checked."""
    source = HUB_SUMMARIZATION[task]
    if source.unavailable:
        raise SummarizationSplitError(f"{task}: {source.unavailable}")
    missing = [s for s in source.splits.values() if s not in hub_splits]
    if missing:
        raise SummarizationSplitError(f"{task}: hub split {missing[0]!r} of {source.dataset} is missing")
    if source.carve:
        rows = hub_splits[source.splits["train"]]
        if source.total is not None and len(rows) != source.total:
            raise SummarizationSplitError(f"{task}: {source.dataset} has {len(rows)} rows, expected {source.total}")
        by_split = _carve(rows, source.carve)
    else:
        by_split = {split: hub_splits[hub] for split, hub in source.splits.items()}
    out = {}
    for split in SPLITS:
        rows = by_split[split]
        if split in source.counts and len(rows) != source.counts[split]:
            raise SummarizationSplitError(f"{task}: {split} has {len(rows)} rows, expected {source.counts[split]} "
                                          f"({source.dataset} at {source.revision})")
        pairs = []
        for index, row in enumerate(rows):
            if source.source not in row or source.target not in row:
                raise SummarizationSplitError(f"{task} {split} row {index}: columns {source.source!r} and "
                                              f"{source.target!r} expected, found {sorted(row)}")
            pairs.append(Pair(str(row[source.source]).strip(), str(row[source.target]).strip()))
        out[split] = [p for p in pairs if p.source and p.target]    # a few hub rows have an empty side
        log.info("%s %s: %d pairs (%d empty dropped)", task, split, len(out[split]), len(pairs) - len(out[split]))
    return out


def download_summarization(task: str, cache_dir: str | None, revision: str | None) -> dict[str, list[Pair]]:
    source = HUB_SUMMARIZATION[task]
    if source.unavailable:
        raise SummarizationSplitError(f"{task}: {source.unavailable}")
    import datasets

    loaded = datasets.load_dataset(source.dataset, source.config, revision=revision or source.revision,
                                   cache_dir=cache_dir)
    return convert_hub_pairs(task, {name: list(loaded[name]) for name in set(source.splits.values())})


def read_cpt_json(path: str | Path, source: str = "article", target: str = "summarization") -> list[Pair]:
    """A local split in the CPT repo's generation format: one JSON object per line (or a JSON list)
    with the document in `article` and the summary in `summarization`."""
    import json

    text = Path(path).read_text(encoding="utf-8").strip()
    if not text:
        raise DataFormatError(path, None, "empty file")
    try:
        rows = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise DataFormatError(path, error.lineno, f"not valid JSON ({error.msg})") from None
    pairs = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or source not in row or target not in row:
            raise DataFormatError(path, number, f"expected an object with {source!r} and {target!r}")
        pairs.append(Pair(str(row[source]).strip(), str(row[target]).strip()))
    return pairs


def load_summarization(task: str, source: str, *, data_dir=None, hub_cache=None, hub_revision=None,
                       synthetic_sizes=None, seed: int = 0) -> dict[str, list[Pair]]:
    """The pairs of a summarization task from its source (synthetic, dir or hub)."""
    synthetic = task == "synth-summary"
    if synthetic != (source == "synthetic"):
        raise ValueError(f"task {task}: source {source!r} does not fit it (synth-summary is generated by the "
                         "suite, the others are real data)")
    if synthetic:
        return make_synthetic_summarization({s: synthetic_sizes[s] for s in SPLITS}, seed)
    if source == "dir":
        if not data_dir:
            raise ValueError(f"task {task}: source 'dir' but data.data_dir is not set")
        return {s: read_cpt_json(Path(data_dir) / task / f"{s}.json") for s in SPLITS}
    return download_summarization(task, hub_cache, hub_revision)


def prepare_summarization(task, source: str, out_dir: str | Path, **kwargs) -> dict:
    """Write `<out_dir>/{train,dev,test}.tsv` (normalized pairs); returns the summary.json content."""
    splits = load_summarization(task.name, source, **kwargs)
    for split in SPLITS:
        if not splits[split]:
            raise ValueError(f"{task.name}: the {split} split is empty")
        write_pairs(Path(out_dir) / f"{split}.tsv", splits[split])
    summary = {"task": task.name, "paper_task": task.paper_task, "source": source, "kind": task.kind,
               "splits": {s: {"count": len(splits[s]),
                              "mean_source_words": float(np.mean([len(p.source.split()) for p in splits[s]])),
                              "mean_target_words": float(np.mean([len(p.target.split()) for p in splits[s]]))}
                          for s in SPLITS}}
    if source == "hub":
        hub = HUB_SUMMARIZATION[task.name]
        summary["hub"] = {"dataset": hub.dataset, "config": hub.config,
                          "revision": kwargs.get("hub_revision") or hub.revision, "notes": hub.notes}
    return summary
