"""Tokenise a split once, attach every token's exit layer once, and cut padded batches.

Exit layers depend on the token ids alone, so they are computed at preprocessing (as the authors
do, also for the per-occurrence random hash) and each batch's `ExitSchedule` is built on the host.
Batches group instances of similar length, which keeps padding (and wasted queries) small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from earlyexit.data.encoded import EncodedSplit
from earlyexit.hashing.functions import TokenExitHash
from earlyexit.models.schedule import ExitSchedule, build_exit_schedule


def attach_exit_layers(split: EncodedSplit, token_hash: TokenExitHash | None, num_layers: int,
                       rng: np.random.Generator) -> EncodedSplit:
    """Exit layer per token; `token_hash=None` means the full model (every token at the last layer)."""
    if token_hash is None:
        split.exit_layers = [np.full(len(ids), num_layers, dtype=np.int64) for ids in split.input_ids]
    else:
        if token_hash.num_layers != num_layers:
            raise ValueError(f"hash fitted for {token_hash.num_layers} layers, backbone has {num_layers}")
        split.exit_layers = [token_hash.assign(ids, rng) for ids in split.input_ids]
    return split


@dataclass
class Batch:
    indices: np.ndarray
    input_ids: torch.Tensor
    token_type_ids: torch.Tensor | None
    labels: torch.Tensor
    schedule: ExitSchedule
    attention_mask: torch.Tensor | None = None   # [B, T] 1 on real tokens (models that take a padding mask)
    lengths: np.ndarray | None = None            # [B] real tokens per row, on the host (no device read needed)

    def to(self, device) -> "Batch":
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(self.indices, move(self.input_ids), move(self.token_type_ids), move(self.labels),
                     self.schedule.to(device), move(self.attention_mask), self.lengths)


def pad_rows(split: EncodedSplit, indices: np.ndarray, pad_id: int, exit_layers: bool = False) -> dict:
    """The rows `indices` padded to the longest of them, as numpy arrays: ids, types (None without
    token types), mask (1 on real tokens), labels, and with `exit_layers` the per-token exits (0 on pads)."""
    width = int(max(len(split.input_ids[i]) for i in indices))
    ids = np.full((len(indices), width), pad_id, dtype=np.int64)
    types = np.zeros((len(indices), width), dtype=np.int64)
    mask = np.zeros((len(indices), width), dtype=np.int64)
    exits = np.zeros((len(indices), width), dtype=np.int64) if exit_layers else None
    for row, i in enumerate(indices):
        n = len(split.input_ids[i])
        ids[row, :n] = split.input_ids[i]
        mask[row, :n] = 1
        if exits is not None:
            exits[row, :n] = split.exit_layers[i]
        if split.token_type_ids is not None:
            types[row, :n] = split.token_type_ids[i]
    return {"ids": ids, "types": types if split.token_type_ids is not None else None, "mask": mask,
            "labels": split.labels[np.asarray(indices)], "exits": exits}


def collate(split: EncodedSplit, indices: np.ndarray, pad_id: int, num_layers: int) -> Batch:
    rows = pad_rows(split, indices, pad_id, exit_layers=True)
    return Batch(
        indices=np.asarray(indices),
        input_ids=torch.from_numpy(rows["ids"]),
        token_type_ids=None if rows["types"] is None else torch.from_numpy(rows["types"]),
        labels=torch.from_numpy(rows["labels"]),
        schedule=build_exit_schedule(torch.from_numpy(rows["exits"]), num_layers),
        attention_mask=torch.from_numpy(rows["mask"]),
        lengths=rows["mask"].sum(1),
    )


def training_batches(split: EncodedSplit, batch_size: int, rng: np.random.Generator,
                     pool_batches: int = 50) -> list[np.ndarray]:
    """Shuffled batches of similar lengths: shuffle, sort pools of `pool_batches` batches by
    length, cut, then shuffle the batch order (a bucket sampler)."""
    order = rng.permutation(len(split))
    lengths = split.lengths
    batches = []
    pool = batch_size * pool_batches
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def evaluation_batches(split: EncodedSplit, batch_size: int) -> list[np.ndarray]:
    """Length-sorted batches (least padding); callers scatter predictions back by `indices`."""
    order = np.argsort(split.lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def iterate(split: EncodedSplit, batches: list[np.ndarray], pad_id: int, num_layers: int) -> Iterator[Batch]:
    for indices in batches:
        yield collate(split, indices, pad_id, num_layers)

