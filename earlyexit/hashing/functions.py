"""HashEE's hash functions: map every token to a fixed exit layer, with no learned module.

Conventions (one definition for the whole suite, see docs/deviations.md):
- Exit layers are 1..L: a token with exit layer e is updated by layers 1..e and frozen after.
  (The authors' code stores e+1 and runs e layers; the two are the same thing.)
- `num_buckets` buckets map to layers 1, 1+k, 1+2k, ... with k = L // num_buckets, as in the
  authors' `interval = (max_layer - 1) // num_buckets`.
- Special tokens ([CLS], [SEP], [PAD], [UNK], [MASK]) always exit at the last layer, so [CLS]
  reaches the classifier fully updated. Token ids never seen while fitting get `unseen_layer`
  (default: the last layer, as in the authors' code).
- Every hash is fitted on the training split only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from earlyexit.plumbing.files import atomic_path, atomic_write_json

HASH_NAMES = ("rand-incons", "rand-cons", "frequency", "mi", "clustered")
# Hashes whose fitted table depends on the seed (the others are fitted once per task x backbone).
SEEDED_HASHES = ("rand-cons", "clustered")


def bucket_layers(num_layers: int, num_buckets: int) -> np.ndarray:
    """Exit layer of each bucket: 1, 1+k, 1+2k, ... with k = num_layers // num_buckets."""
    if not 1 <= num_buckets <= num_layers:
        raise ValueError(f"hash.num_buckets must be in 1..{num_layers} (the backbone depth), got {num_buckets}")
    interval = num_layers // num_buckets
    return 1 + interval * np.arange(num_buckets)


@dataclass
class TokenExitHash:
    """A fitted hash: token id -> exit layer (or, for rand-incons, a fresh draw per occurrence)."""

    name: str
    num_layers: int
    num_buckets: int
    special_ids: list[int]
    # Exit layer per vocabulary id; None for rand-incons, whose layers are drawn per occurrence.
    table: np.ndarray | None
    unseen_layer: int
    stats: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.table is not None:  # the stored table agrees with `assign`: specials at the last layer
            self.table = np.asarray(self.table, dtype=np.int64).copy()
            specials = [i for i in self.special_ids if 0 <= i < len(self.table)]
            self.table[specials] = self.num_layers

    def assign(self, input_ids: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Exit layer of every position of one tokenised instance (specials pinned to the last layer)."""
        ids = np.asarray(input_ids, dtype=np.int64)
        if self.table is None:
            if rng is None:
                raise ValueError("rand-incons needs an rng: its layers are drawn per token occurrence")
            layers = bucket_layers(self.num_layers, self.num_buckets)[rng.integers(0, self.num_buckets, ids.shape)]
        else:
            inside = ids < len(self.table)
            layers = np.full(ids.shape, self.unseen_layer, dtype=np.int64)
            layers[inside] = self.table[ids[inside]]
        layers = np.where(np.isin(ids, self.special_ids), self.num_layers, layers)
        return layers.astype(np.int64)

    # --- artifact I/O -------------------------------------------------------------------------
    def save(self, npz_path: str | Path, summary_path: str | Path) -> None:
        meta = {
            "name": self.name,
            "num_layers": self.num_layers,
            "num_buckets": self.num_buckets,
            "special_ids": list(map(int, self.special_ids)),
            "unseen_layer": self.unseen_layer,
        }
        with atomic_path(npz_path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, table=self.table if self.table is not None else np.zeros(0, np.int16),
                         has_table=self.table is not None, meta=json.dumps(meta))
        atomic_write_json(summary_path, {**meta, **self.stats})

    @classmethod
    def load(cls, npz_path: str | Path) -> "TokenExitHash":
        from earlyexit.plumbing.files import read_npz

        z = read_npz(npz_path)      # a truncated artifact: one line naming it
        meta = json.loads(str(z["meta"]))
        table = z["table"].astype(np.int64) if bool(z["has_table"]) else None
        return cls(table=table, **meta)


def _bucket_by_rank(ranked_ids: np.ndarray, num_buckets: int, layers: np.ndarray,
                    weights: np.ndarray | None = None) -> np.ndarray:
    """Layer of each id in `ranked_ids` (earliest first).

    Without weights: an equal number of TYPES per bucket, the V mod num_buckets leftovers join the
    last bucket (the authors' active scheme). With weights (token counts): equal token MASS per
    bucket (the authors' older, commented-out scheme).
    """
    n = len(ranked_ids)
    if weights is None:
        size = max(1, n // num_buckets)
        bucket = np.minimum(np.arange(n) // size, num_buckets - 1)
    else:
        mass = np.cumsum(weights) - weights  # mass strictly before each type
        bucket = np.minimum((mass * num_buckets // max(weights.sum(), 1)).astype(np.int64), num_buckets - 1)
    return layers[bucket]


def _count_types(sequences: Iterable[np.ndarray], special_ids: Sequence[int]):
    """Non-special types in first-seen order, with their counts."""
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]) if sequences else np.zeros(0, np.int64)
    flat = flat[~np.isin(flat, special_ids)]
    types, first, counts = np.unique(flat, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    return types[order], counts[order], flat


def _table(vocab_size: int, num_layers: int, unseen_layer: int, ids: np.ndarray, layers: np.ndarray) -> np.ndarray:
    table = np.full(vocab_size, unseen_layer, dtype=np.int64)
    table[ids] = layers
    return table


def _layer_histogram(h: TokenExitHash, sequences: Sequence[np.ndarray]) -> dict:
    """Share of (train) token occurrences per exit layer and the mean exit layer, for the summary."""
    rng = np.random.default_rng(0)
    layers = np.concatenate([h.assign(s, rng) for s in sequences]) if len(sequences) else np.zeros(0)
    hist = np.bincount(layers.astype(np.int64), minlength=h.num_layers + 1)[1:]
    total = max(int(hist.sum()), 1)
    return {
        "train_token_share_per_layer": {str(i + 1): round(float(c) / total, 6) for i, c in enumerate(hist)},
        "train_mean_exit_layer": float(layers.mean()) if layers.size else float("nan"),
        "bucket_layers": bucket_layers(h.num_layers, h.num_buckets).tolist(),
    }


def frequency_hash(sequences: Sequence[np.ndarray], vocab_size: int, special_ids: Sequence[int],
                   num_layers: int, num_buckets: int, balance: str = "types",
                   unseen_layer: int | None = None) -> TokenExitHash:
    """Frequent tokens exit earliest. Ties keep first-seen order (the authors' stable sort)."""
    if balance not in ("types", "tokens"):
        raise ValueError(f"hash.balance must be 'types' or 'tokens', got {balance!r}")
    types, counts, _ = _count_types(sequences, special_ids)
    order = np.argsort(-counts, kind="stable")
    layers = _bucket_by_rank(types[order], num_buckets, bucket_layers(num_layers, num_buckets),
                             counts[order] if balance == "tokens" else None)
    unseen = num_layers if unseen_layer is None else unseen_layer
    h = TokenExitHash("frequency", num_layers, num_buckets, list(special_ids),
                      _table(vocab_size, num_layers, unseen, types[order], layers), unseen)
    h.stats = {"num_types": int(len(types)), "balance": balance}
    return h


def _mi_classes(labels: Sequence[float], num_labels: int, regression_bins: int) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.float64)
    if num_labels > 1:
        return labels.astype(np.int64)
    # Regression (STS-B): MI needs discrete labels, so bin the scores at training quantiles.
    edges = np.quantile(labels, np.linspace(0, 1, regression_bins + 1)[1:-1])
    return np.searchsorted(edges, labels, side="right")


def mutual_information_scores(sequences: Sequence[np.ndarray], labels: Sequence[float],
                              special_ids: Sequence[int], num_labels: int,
                              regression_bins: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Per-type MI contribution sum_y p(x,y) ln(p(x,y)/(p(x)p(y)) + 1e-6), as in the authors' code.

    Deviations (docs/deviations.md): every occurrence is counted (the authors skip each type's
    first), and any number of classes works (theirs is binary only); regression labels are binned.
    """
    classes = _mi_classes(labels, num_labels, regression_bins)
    n_classes = int(classes.max()) + 1 if len(classes) else 1
    types, counts, _ = _count_types(sequences, special_ids)
    index = {int(t): i for i, t in enumerate(types)}
    joint = np.zeros((len(types), n_classes))
    for seq, y in zip(sequences, classes):
        seq = np.asarray(seq, dtype=np.int64)
        seq = seq[~np.isin(seq, special_ids)]
        np.add.at(joint[:, y], [index[int(t)] for t in seq], 1.0)
    total = counts.sum()
    p_x = counts / total
    p_xy = joint / total
    # p(y) is the share of training *sentences* with label y (sentence-level, as the authors do).
    p_y = np.bincount(classes, minlength=n_classes) / len(classes)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = p_xy * np.log(p_xy / (p_x[:, None] * p_y[None, :]) + 1e-6)
    scores = np.where(p_xy > 0, terms, 0.0).sum(axis=1)
    return types, scores


def mutual_information_hash(sequences: Sequence[np.ndarray], labels: Sequence[float], vocab_size: int,
                            special_ids: Sequence[int], num_layers: int, num_buckets: int,
                            num_labels: int, regression_bins: int = 2,
                            unseen_layer: int | None = None) -> TokenExitHash:
    """Tokens most informative about the label exit earliest (authors' ordering)."""
    types, scores = mutual_information_scores(sequences, labels, special_ids, num_labels, regression_bins)
    order = np.argsort(-scores, kind="stable")
    layers = _bucket_by_rank(types[order], num_buckets, bucket_layers(num_layers, num_buckets))
    unseen = num_layers if unseen_layer is None else unseen_layer
    h = TokenExitHash("mi", num_layers, num_buckets, list(special_ids),
                      _table(vocab_size, num_layers, unseen, types[order], layers), unseen)
    h.stats = {"num_types": int(len(types))}
    return h


def random_consistent_hash(vocab_size: int, special_ids: Sequence[int], num_layers: int,
                           num_buckets: int, seed: int) -> TokenExitHash:
    """A fixed uniformly random bucket per vocabulary id (the same layer in train, dev and test)."""
    rng = np.random.default_rng(seed)
    layers = bucket_layers(num_layers, num_buckets)[rng.integers(0, num_buckets, vocab_size)]
    return TokenExitHash("rand-cons", num_layers, num_buckets, list(special_ids),
                         layers.astype(np.int64), num_layers)


def random_inconsistent_hash(special_ids: Sequence[int], num_layers: int, num_buckets: int) -> TokenExitHash:
    """A fresh uniform bucket per token occurrence, drawn once at preprocessing (specials pinned)."""
    return TokenExitHash("rand-incons", num_layers, num_buckets, list(special_ids), None, num_layers)


def clustered_hash(embeddings: np.ndarray, special_ids: Sequence[int], num_layers: int, num_buckets: int,
                   seed: int, n_init: int = 40, max_iter: int = 300) -> TokenExitHash:
    """k-means (k = num_buckets) over the backbone's input word-embedding rows.

    Clusters are ordered by the SUM of their members' L2 norms, ascending (so mostly by size, as in
    the authors' code); the first cluster exits earliest. Uses the real pretrained embeddings (the
    authors' run almost certainly clustered random ones; docs/deviations.md).
    """
    from sklearn.cluster import KMeans

    emb = np.asarray(embeddings, dtype=np.float32)
    km = KMeans(n_clusters=num_buckets, n_init=n_init, max_iter=max_iter, random_state=seed)
    assignment = km.fit_predict(emb)
    norm_sums = np.bincount(assignment, weights=np.linalg.norm(emb, axis=1), minlength=num_buckets)
    rank_of_cluster = np.argsort(np.argsort(norm_sums, kind="stable"), kind="stable")
    layers = bucket_layers(num_layers, num_buckets)[rank_of_cluster[assignment]]
    return TokenExitHash("clustered", num_layers, num_buckets, list(special_ids),
                         layers.astype(np.int64), num_layers,
                         stats={"cluster_sizes": np.bincount(assignment, minlength=num_buckets).tolist()})


def fit_hash(name: str, train_sequences: Sequence[np.ndarray], train_labels: Sequence[float], *,
             vocab_size: int, special_ids: Sequence[int], num_layers: int, num_buckets: int,
             num_labels: int, seed: int, embeddings: np.ndarray | None = None,
             balance: str = "types", mi_regression_bins: int = 2,
             cluster_n_init: int = 40, cluster_max_iter: int = 300) -> TokenExitHash:
    """Fit the hash `name` on the training split (the one entry point the workflow calls)."""
    if name == "frequency":
        h = frequency_hash(train_sequences, vocab_size, special_ids, num_layers, num_buckets, balance)
    elif name == "mi":
        h = mutual_information_hash(train_sequences, train_labels, vocab_size, special_ids, num_layers,
                                    num_buckets, num_labels, mi_regression_bins)
    elif name == "rand-cons":
        h = random_consistent_hash(vocab_size, special_ids, num_layers, num_buckets, seed)
    elif name == "rand-incons":
        h = random_inconsistent_hash(special_ids, num_layers, num_buckets)
    elif name == "clustered":
        if embeddings is None:
            raise ValueError("the clustered hash needs the backbone's word embeddings")
        h = clustered_hash(embeddings, special_ids, num_layers, num_buckets, seed, cluster_n_init, cluster_max_iter)
    else:
        raise ValueError(f"unknown hash {name!r} (known: {', '.join(HASH_NAMES)})")
    h.stats = {**h.stats, **_layer_histogram(h, train_sequences)}
    return h
