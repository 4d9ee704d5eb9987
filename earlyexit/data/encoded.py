"""Tokenised splits: ids, segment ids and labels per instance, stored as one npz per task x backbone
(ragged arrays as flat + offsets). numpy only, so hash fitting never imports torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from earlyexit.plumbing.files import atomic_path, read_npz


@dataclass
class EncodedSplit:
    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None
    labels: np.ndarray
    exit_layers: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def take(self, rows) -> "EncodedSplit":
        """The instances at `rows` (in that order), e.g. the folds a labelling model is fitted on."""
        rows = [int(r) for r in rows]
        return EncodedSplit(input_ids=[self.input_ids[r] for r in rows],
                            token_type_ids=None if self.token_type_ids is None else [self.token_type_ids[r] for r in rows],
                            labels=self.labels[rows],
                            exit_layers=None if self.exit_layers is None else [self.exit_layers[r] for r in rows])


def encode_examples(tokenizer, examples: Sequence, max_seq_len: int, regression: bool) -> EncodedSplit:
    text_a = [e.text_a for e in examples]
    text_b = [e.text_b for e in examples] if examples and examples[0].text_b is not None else None
    enc = tokenizer(text_a, text_b, truncation=True, max_length=max_seq_len)
    types = enc.get("token_type_ids")
    labels = np.array([e.label for e in examples], dtype=np.float32 if regression else np.int64)
    return EncodedSplit(
        input_ids=[np.asarray(x, dtype=np.int64) for x in enc["input_ids"]],
        token_type_ids=[np.asarray(x, dtype=np.int64) for x in types] if types is not None else None,
        labels=labels,
    )




# --- tokenised splits on disk (one npz per task x backbone; ragged arrays as flat + offsets) ---

def save_encoded(path, splits: dict[str, EncodedSplit], extra: dict[str, np.ndarray] | None = None) -> None:
    """`extra`: more arrays in the same file, named `<split>_<name>` (read with np.load), e.g. the
    targets of a summarization task; load_encoded reads the sources as usual (hash fitting)."""
    arrays = dict(extra or {})
    for name, split in splits.items():
        offsets = np.concatenate([[0], np.cumsum(split.lengths)])
        arrays[f"{name}_ids"] = np.concatenate(split.input_ids) if len(split) else np.zeros(0, np.int64)
        arrays[f"{name}_offsets"] = offsets
        arrays[f"{name}_labels"] = split.labels
        if split.token_type_ids is not None:
            arrays[f"{name}_types"] = np.concatenate(split.token_type_ids)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_encoded(path) -> dict[str, EncodedSplit]:
    splits = {}
    z = read_npz(path)
    for name in sorted({k.rsplit("_", 1)[0] for k in z}):
        offsets = z[f"{name}_offsets"]
        cut = lambda flat: [flat[a:b] for a, b in zip(offsets[:-1], offsets[1:])]  # noqa: E731
        splits[name] = EncodedSplit(
            input_ids=cut(z[f"{name}_ids"]),
            token_type_ids=cut(z[f"{name}_types"]) if f"{name}_types" in z else None,
            labels=z[f"{name}_labels"],
        )
    return splits
