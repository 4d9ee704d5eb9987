"""Raw sources the difficulty datasets are built from.

NLI rows are (premise, hypothesis, gold) with gold one of GOLD_LABELS or "-" (no annotator majority).
NER rows are (words, tags) with string tags. Real sources: the SNLI 1.0 release (txt or jsonl), the
HF hub (`stanfordnlp/snli`, an OntoNotes NER dataset), ELUE-format TSVs and CoNLL files. Offline
stand-ins: a synthetic SNLI-like generator (with "-" pairs) and a synthetic tagging task.
Hub loaders import `datasets` lazily and are never called by the tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from difficulty.formats import DataFormatError

GOLD_LABELS = ("entailment", "neutral", "contradiction")  # ELUE / HF SNLI label ids 0, 1, 2
NO_MAJORITY = "-"


# --- SNLI --------------------------------------------------------------------------------------

def read_snli_release(folder) -> list[tuple[str, str, str]]:
    """Pool snli_1.0_{train,dev,test}.{txt,jsonl}: (sentence1, sentence2, gold_label) incl. "-" rows."""
    folder = Path(folder)
    rows = []
    for split in ("train", "dev", "test"):
        txt, jsonl = folder / f"snli_1.0_{split}.txt", folder / f"snli_1.0_{split}.jsonl"
        if txt.exists():
            rows += _snli_txt(txt)
        elif jsonl.exists():
            rows += _snli_jsonl(jsonl)
        else:
            raise FileNotFoundError(f"{folder}: neither snli_1.0_{split}.txt nor .jsonl found")
    return rows


def _snli_txt(path):
    # Column 0 gold_label, columns 5 and 6 the raw sentences (not the parses).
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:1] != ["gold_label"] or len(header) < 7:
            raise DataFormatError(path, 1, "not an SNLI 1.0 txt header (gold_label ... sentence1 sentence2)")
        for number, line in enumerate(f, start=2):
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < 7:
                raise DataFormatError(path, number, f"expected at least 7 columns, got {len(fields)}")
            rows.append((fields[5], fields[6], _gold(path, number, fields[0])))
    return rows


def _snli_jsonl(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                rows.append((item["sentence1"], item["sentence2"], _gold(path, number, item["gold_label"])))
            except (json.JSONDecodeError, KeyError) as error:
                raise DataFormatError(path, number, f"bad SNLI jsonl row ({error})") from None
    return rows


def _gold(path, number, label: str) -> str:
    if label not in GOLD_LABELS and label != NO_MAJORITY:
        raise DataFormatError(path, number, f"gold label {label!r} is not one of {GOLD_LABELS} or '-'")
    return label


def load_snli_hub(hub_id: str, splits, revision=None, cache_dir=None, max_rows=None) -> list[tuple[str, str, str]]:
    """HF `stanfordnlp/snli`: label -1 (no majority) becomes "-"; needs the network (or a warm cache)."""
    import datasets

    rows = []
    for split in splits:
        data = datasets.load_dataset(hub_id, split=split, revision=revision, cache_dir=cache_dir)
        for item in data:
            label = int(item["label"])
            rows.append((item["premise"], item["hypothesis"], NO_MAJORITY if label < 0 else GOLD_LABELS[label]))
            if max_rows and len(rows) >= max_rows:
                return rows
    return rows


def read_nli_tsv(path, max_rows=None) -> list[tuple[str, str, str]]:
    """ELUE-format NLI split: header premise hypothesis label, label 0/1/2 (BOM and CRLF tolerated)."""
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        if header != ["premise", "hypothesis", "label"]:
            raise DataFormatError(path, 1, f"header must be premise hypothesis label, got {header!r}")
        for number, line in enumerate(f, start=2):
            fields = line.rstrip("\r\n").split("\t")
            if fields == [""]:
                continue
            if len(fields) != 3 or fields[2].strip() not in ("0", "1", "2"):
                raise DataFormatError(path, number, "expected premise, hypothesis and a label 0/1/2")
            rows.append((fields[0], fields[1], GOLD_LABELS[int(fields[2])]))
            if max_rows and len(rows) >= max_rows:
                break
    return rows


# --- synthetic SNLI-like pairs ---------------------------------------------------------------------

_SUBJECTS = ("man", "woman", "boy", "girl", "dog", "child", "worker", "player", "singer", "cook")
_VERBS = ("running", "sleeping", "eating", "singing", "reading", "swimming", "dancing", "cooking", "painting")
_PLACES = ("park", "kitchen", "street", "beach", "room", "garden", "station")
_ADJECTIVES = ("young", "old", "tall", "happy", "tired", "small")
_PURPOSES = ("for a friend", "to win a prize", "before dinner", "with a smile", "after work")
_HEDGES = ("maybe", "probably", "perhaps")


def synthetic_snli(n: int, ambiguous_fraction: float, seed: int, noisy_fraction: float = 0.0) -> list[tuple[str, str, str]]:
    """Template pairs. Entailment drops detail; contradiction swaps the verb (needs both sentences)
    or negates (a cue word); neutral adds a purpose.

    ambiguous_fraction: "-" pairs (no majority), drawn from a random class's template and hedged
    half of the time: weakly recognisable, like SNLI's. noisy_fraction: hedged pairs that keep a
    random majority label, so an annotator is often wrong on them (difficulty a predictor can see).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        subject, verb, place, adjective = (_SUBJECTS[rng.integers(len(_SUBJECTS))], _VERBS[rng.integers(len(_VERBS))],
                                           _PLACES[rng.integers(len(_PLACES))], _ADJECTIVES[rng.integers(len(_ADJECTIVES))])
        premise = f"a {adjective} {subject} is {verb} in the {place} ."
        gold = GOLD_LABELS[rng.integers(3)]
        if gold == "entailment":
            hypothesis = f"a {subject} is {verb} ." if rng.random() < 0.6 else f"someone is {verb} in the {place} ."
        elif gold == "contradiction":
            other = _VERBS[(_VERBS.index(verb) + 1 + rng.integers(len(_VERBS) - 1)) % len(_VERBS)]
            hypothesis = f"a {subject} is {other} ." if rng.random() < 0.6 else f"nobody is {verb} in the {place} ."
        else:
            hypothesis = f"a {subject} is {verb} {_PURPOSES[rng.integers(len(_PURPOSES))]} ."
        draw = rng.random()
        hedge = f" is {_HEDGES[rng.integers(len(_HEDGES))]} "
        if draw < ambiguous_fraction:
            if rng.random() < 0.5:
                hypothesis = hypothesis.replace(" is ", hedge, 1)
            gold = NO_MAJORITY
        elif draw < ambiguous_fraction + noisy_fraction:
            hypothesis = hypothesis.replace(" is ", hedge, 1)
            gold = GOLD_LABELS[rng.integers(3)]
        rows.append((premise, hypothesis, gold))
    return rows


# --- NER ---------------------------------------------------------------------------------------------

def read_conll(path, max_rows=None) -> list[tuple[list[str], list[str]]]:
    """CoNLL-style: one token per line, word in the first column and tag in the last; blank lines
    end sentences; `-DOCSTART-` lines are skipped."""
    sentences, words, tags = [], [], []
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                if words:
                    sentences.append((words, tags))
                    words, tags = [], []
                    if max_rows and len(sentences) >= max_rows:
                        return sentences
                continue
            if fields[0] == "-DOCSTART-":
                continue
            if len(fields) < 2:
                raise DataFormatError(path, number, f"expected a word and a tag, got {line.strip()!r}")
            words.append(fields[0])
            tags.append(fields[-1])
    if words:
        sentences.append((words, tags))
    if not sentences:
        raise DataFormatError(path, 1, "no sentences")
    return sentences


def load_ner_hub(hub_id: str, split: str, revision=None, cache_dir=None, max_rows=None,
                 tokens_field="tokens", tags_field="tags", data_files=None) -> list[tuple[list[str], list[str]]]:
    """An NER dataset from the HF hub (e.g. `tner/ontonotes5`: tokens + integer tags).

    data_files: JSON-lines files of the split (e.g. "hf://datasets/tner/ontonotes5/dataset/valid.json"),
    for hub datasets that only ship a loading script, which `datasets` >= 4 no longer runs.
    """
    import datasets

    if data_files:
        data = datasets.load_dataset("json", data_files={split: data_files}, split=split, cache_dir=cache_dir)
    else:
        data = datasets.load_dataset(hub_id, split=split, revision=revision, cache_dir=cache_dir)
    rows = []
    for item in data:
        rows.append((list(item[tokens_field]), [str(t) for t in item[tags_field]]))
        if max_rows and len(rows) >= max_rows:
            break
    return rows


_NAMES = ("john", "mary", "peter", "anna", "omar", "li", "sofia", "david")
_CITIES = ("paris", "london", "tokyo", "berlin", "cairo", "lima", "oslo")
_ORGS = ("google", "acme", "unicef", "siemens", "nasa", "toyota")
_AMBIGUOUS = ("washington", "jordan", "apple", "florence", "ford")
_FILLERS = ("the", "report", "said", "that", "on", "monday", "we", "met", "new", "plans", "today", "and", "later")


def synthetic_tagging(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Sentences with PER / LOC / ORG / O tags and difficulty that needs depth.

    Most entities are fixed lexicon words (easy, shallow). An ambiguous word takes the tag of the
    entity before it, which may itself be ambiguous: resolving a chain of k ambiguous words needs
    about k hops of attention, so deeper layers of a multi-exit tagger get more of them right.
    """
    rng = np.random.default_rng(seed)
    lexicon = {"PER": _NAMES, "LOC": _CITIES, "ORG": _ORGS}
    rows = []
    for _ in range(n):
        words, tags, previous = [], [], None
        for _ in range(int(rng.integers(2, 6))):
            for _ in range(int(rng.integers(1, 3))):
                words.append(_FILLERS[rng.integers(len(_FILLERS))])
                tags.append("O")
            if previous is not None and rng.random() < 0.6:
                words.append(_AMBIGUOUS[rng.integers(len(_AMBIGUOUS))])
                tags.append(previous)
            else:
                previous = ("PER", "LOC", "ORG")[rng.integers(3)]
                pool = lexicon[previous]
                words.append(pool[rng.integers(len(pool))])
                tags.append(previous)
        rows.append((words, tags))
    return rows
