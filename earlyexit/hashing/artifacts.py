"""Fit a hash on a tokenised training split and save it (npz + JSON summary).

Imports only numpy at module level: the backbone (torch, transformers) is loaded only for the
clustered hash, which needs its word embeddings."""

from __future__ import annotations

import logging
from pathlib import Path

from earlyexit.data.encoded import load_encoded
from earlyexit.hashing.functions import HASH_NAMES, TokenExitHash, fit_hash

log = logging.getLogger("earlyexit.hashing.artifacts")


def fit_hash_artifact(*, tokenized: str | Path, meta: dict, backbone, hash_name: str,
                      hash_config: dict, seed: int, out_npz: str | Path, out_summary: str | Path) -> TokenExitHash:
    """Fit `hash_name` on the tokenised training split and save it (npz + JSON summary).
    `hash_config` is the validated config's `hash` section (the schema fills every default)."""
    if hash_name not in HASH_NAMES:
        raise ValueError(f"unknown hash {hash_name!r} (known: {', '.join(HASH_NAMES)})")
    train = load_encoded(tokenized)["train"]
    embeddings = None
    if hash_name == "clustered":
        from earlyexit.models.backbones import input_embedding_matrix, load_classifier

        embeddings = input_embedding_matrix(load_classifier(backbone, meta["num_labels"], seed))
    h = fit_hash(hash_name, train.input_ids, train.labels,
                 vocab_size=meta["vocab_size"], special_ids=meta["special_ids"],
                 num_layers=meta["num_layers"], num_buckets=hash_config["num_buckets"],
                 num_labels=meta["num_labels"], seed=seed, embeddings=embeddings,
                 balance=hash_config["balance"], mi_regression_bins=hash_config["mi_regression_bins"],
                 cluster_n_init=hash_config["cluster_n_init"], cluster_max_iter=hash_config["cluster_max_iter"])
    h.stats.update({"task": meta["task"], "backbone": backbone.name, "seed": seed})
    h.save(out_npz, out_summary)
    log.info("fitted %s hash: mean train exit layer %.2f", hash_name, h.stats["train_mean_exit_layer"])
    return h
