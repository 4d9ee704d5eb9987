"""Token ids for pairs and word pieces, and padded batches with explicit masks.

A batch carries `attention_mask` (real input positions) and, at the token level, `cell_mask`: the
positions that hold a label cell (the word pieces; not [CLS], [SEP] or padding). Every pooling and
loss in the study uses these masks, which the authors' code did not (hashee-spec 9.8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Encoded:
    ids: list[list[int]]
    types: list[list[int]]
    cells: list[np.ndarray] | None = None  # token level: positions of the label cells in ids

    def __len__(self) -> int:
        return len(self.ids)


def encode_pairs(tokenizer, text_a, text_b, max_len: int) -> Encoded:
    """[CLS] a [SEP] b [SEP] (the tokenizer's own template), truncated to max_len."""
    enc = tokenizer(list(text_a), list(text_b), truncation=True, max_length=max_len)
    ids = enc["input_ids"]
    types = enc.get("token_type_ids") or [[0] * len(x) for x in ids]
    return Encoded(ids, types)


def encode_pieces(tokenizer, pieces_list) -> Encoded:
    """Stored word pieces -> [CLS] pieces [SEP]; a piece the tokenizer lacks becomes its unknown id.
    No truncation: every stored piece is a label cell that must get a prediction."""
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    ids, cells = [], []
    for pieces in pieces_list:
        ids.append([cls, *tokenizer.convert_tokens_to_ids(list(pieces)), sep])
        cells.append(np.arange(1, len(pieces) + 1))
    return Encoded(ids, [[0] * len(x) for x in ids], cells)


def encode_words(tokenizer, words_list, max_len: int):
    """Word-piece each sentence (a word's pieces inherit its tag, as in the authors' tagger).

    Returns (Encoded, pieces per sentence, word index per piece); truncation keeps max_len - 2 pieces.
    """
    enc = tokenizer([list(w) for w in words_list], is_split_into_words=True, truncation=True, max_length=max_len)
    ids, pieces, word_index, cells = [], [], [], []
    for i, row in enumerate(enc["input_ids"]):
        words = enc.word_ids(i)
        keep = [p for p, w in enumerate(words) if w is not None]
        ids.append(row)
        cells.append(np.asarray(keep, dtype=int))
        pieces.append(tokenizer.convert_ids_to_tokens([row[p] for p in keep]))
        word_index.append(np.asarray([words[p] for p in keep], dtype=int))
    return Encoded(ids, [[0] * len(x) for x in ids], cells), pieces, word_index


def pad_batch(enc: Encoded, index, pad_id: int, device) -> dict:
    """input_ids, attention_mask, token_type_ids (B, T) and, at the token level, cell_mask (B, T)."""
    rows = [enc.ids[i] for i in index]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, i in enumerate(index):
        n = len(enc.ids[i])
        ids[k, :n] = torch.tensor(enc.ids[i])
        types[k, :n] = torch.tensor(enc.types[i])
        mask[k, :n] = 1
    batch = {"input_ids": ids.to(device), "attention_mask": mask.to(device), "token_type_ids": types.to(device)}
    if enc.cells is not None:
        cell_mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for k, i in enumerate(index):
            cell_mask[k, torch.as_tensor(enc.cells[i], dtype=torch.long)] = True
        batch["cell_mask"] = cell_mask.to(device)
    return batch


def batches(n: int, batch_size: int, rng: np.random.Generator | None):
    """Index lists; shuffled when rng is given (training), in order otherwise (evaluation)."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i:i + batch_size].tolist() for i in range(0, n, batch_size)]
