"""Builders of the difficulty datasets (no model code here; the annotator lives in annotate.py).

- Human-defined (hashee-spec 1.1): every "-" pair is difficult (1); as many majority-label pairs,
  drawn evenly over the three classes, are simple (0); a balanced train/test split. Seeded (the
  authors' split was unseeded), so a rebuild is bit-identical.
- Model-defined: the labelled split is cut into train/test, in order for pairs (the authors' first
  8,000 / last 1,842 dev rows) and by a seeded shuffle for tokens (the authors' 0.2806 split).
- Released files: read and validated (12 bits per model-defined row).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from difficulty import sources
from difficulty.formats import PairSet, TokenSet, read_pairs

RELEASED_LAYERS = 12


def even_counts(total: int, parts: int = 3) -> list[int]:
    """`total` spread over `parts` as evenly as possible, the remainder going to the first parts."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def build_human(rows, test_per_class: int, train_per_class: int | None, seed: int):
    """(train, test, counts) from (premise, hypothesis, gold) rows.

    Test: `test_per_class` difficult + as many simple pairs; train: `train_per_class` difficult
    (default: all remaining) + as many simple pairs. Simple pairs are spread evenly over the classes.
    """
    rng = np.random.default_rng(seed)
    difficult = [(a, b) for a, b, gold in rows if gold == sources.NO_MAJORITY]
    by_class = {c: [(a, b) for a, b, gold in rows if gold == c] for c in sources.GOLD_LABELS}
    order = rng.permutation(len(difficult))
    difficult = [difficult[i] for i in order]
    for c in sources.GOLD_LABELS:
        order = rng.permutation(len(by_class[c]))
        by_class[c] = [by_class[c][i] for i in order]

    if test_per_class < 1 or len(difficult) <= test_per_class:
        raise ValueError(f"difficulty.human.test_per_class={test_per_class} needs more difficult ('-') pairs "
                         f"than that; the source has {len(difficult)}")
    n_train = len(difficult) - test_per_class if train_per_class is None else train_per_class
    if n_train < 1 or n_train + test_per_class > len(difficult):
        raise ValueError(f"difficulty.human.train_per_class={train_per_class}: only "
                         f"{len(difficult) - test_per_class} difficult pairs are left after the test split")
    test_hard, train_hard = difficult[:test_per_class], difficult[test_per_class:test_per_class + n_train]

    train_simple, test_simple, per_class = [], [], {}
    for c, n_tr, n_te in zip(sources.GOLD_LABELS, even_counts(n_train), even_counts(test_per_class)):
        if n_tr + n_te > len(by_class[c]):
            raise ValueError(f"the source has {len(by_class[c])} '{c}' pairs; {n_tr + n_te} are needed")
        train_simple += by_class[c][:n_tr]
        test_simple += by_class[c][n_tr:n_tr + n_te]
        per_class[c] = {"train": n_tr, "test": n_te}

    def assemble(hard, simple):
        items = [(a, b, 1) for a, b in hard] + [(a, b, 0) for a, b in simple]
        items = [items[i] for i in rng.permutation(len(items))]
        return PairSet([x[0] for x in items], [x[1] for x in items], np.asarray([x[2] for x in items], dtype=np.int8))

    train, test = assemble(train_hard, train_simple), assemble(test_hard, test_simple)
    counts = {"difficult_available": len(difficult), "simple_available": {c: len(v) for c, v in by_class.items()},
              "train": {"rows": len(train), "difficult": len(train_hard), "simple": len(train_simple)},
              "test": {"rows": len(test), "difficult": len(test_hard), "simple": len(test_simple)},
              "simple_per_class": per_class, "seed": seed}
    return train, test, counts


def human_counts(train: PairSet, test: PairSet) -> dict:
    return {split: {"rows": len(data), "difficult": int(data.labels.sum()), "simple": int(len(data) - data.labels.sum())}
            for split, data in (("train", train), ("test", test))}


def read_released(folder, kind: str):
    """The released `{train,test}.txt` of `kind` human (0/1) or model (12 bits per row)."""
    folder = Path(folder)
    multilabel = kind == "model"
    return tuple(read_pairs(folder / f"{split}.txt", multilabel=multilabel,
                            n_layers=RELEASED_LAYERS if multilabel else None) for split in ("train", "test"))


def split_in_order(pairs: PairSet, n_train: int):
    if not 0 < n_train < len(pairs):
        raise ValueError(f"difficulty.sentence.n_train={n_train} must be between 1 and the {len(pairs) - 1} "
                         "labelled rows minus one")
    return pairs.subset(range(n_train)), pairs.subset(range(n_train, len(pairs)))


def split_shuffled(tokens: TokenSet, test_fraction: float, seed: int):
    n_test = int(round(len(tokens) * test_fraction))
    if not 0 < n_test < len(tokens):
        raise ValueError(f"difficulty.token.test_fraction={test_fraction} leaves an empty split of {len(tokens)} rows")
    order = np.random.default_rng(seed).permutation(len(tokens))
    return tokens.subset(sorted(order[n_test:])), tokens.subset(sorted(order[:n_test]))


def load_nli(spec: dict, seed: int, *, keep_no_majority: bool = False):
    """NLI rows from a `difficulty.*_data` entry: source hub | tsv | snli_dir | synthetic."""
    source, max_rows = spec["source"], spec.get("max_rows")
    if source == "synthetic":
        rows = sources.synthetic_snli(spec["size"], spec.get("ambiguous_fraction", 0.0), spec.get("seed", seed),
                                      spec.get("noisy_fraction", 0.0))
    elif source == "tsv":
        rows = sources.read_nli_tsv(spec["path"], max_rows=max_rows)
    elif source == "snli_dir":
        rows = sources.read_snli_release(spec["path"])
    elif source == "hub":
        splits = spec.get("splits") or [spec.get("split", "train")]
        # max_rows counts labelled pairs (the authors' "first 15,000 rows" of ELUE's train.tsv).
        rows = sources.load_snli_hub(spec.get("hub_id", "stanfordnlp/snli"), splits, spec.get("revision"),
                                     spec.get("cache_dir"))
    else:
        raise ValueError(f"unknown NLI source {source!r} (hub, tsv, snli_dir, synthetic)")
    if not keep_no_majority:
        rows = [r for r in rows if r[2] != sources.NO_MAJORITY]
    return rows[:max_rows] if max_rows else rows


def load_ner(spec: dict, seed: int):
    """NER rows from a `difficulty.token.*_data` entry: source hub | conll | synthetic."""
    source, max_rows = spec["source"], spec.get("max_rows")
    if source == "synthetic":
        rows = sources.synthetic_tagging(spec["size"], spec.get("seed", seed))
    elif source == "conll":
        rows = sources.read_conll(spec["path"], max_rows=max_rows)
    elif source == "hub":
        rows = sources.load_ner_hub(spec.get("hub_id", "tner/ontonotes5"), spec.get("split", "train"), spec.get("revision"),
                                    spec.get("cache_dir"), max_rows, spec.get("tokens_field", "tokens"),
                                    spec.get("tags_field", "tags"), spec.get("data_files"))
    else:
        raise ValueError(f"unknown NER source {source!r} (hub, conll, synthetic)")
    rows = [r for r in rows if r[0]]  # an empty sentence has no cells
    return rows[:max_rows] if max_rows else rows
