"""Tokenised prompt -> target examples of the decoder-LM experiments, their training batches, and
the backbones they run on (a tiny random LLaMA for the demo, a hub causal LM for the paper).

A training row is bos + prompt (+ <sep> for the word vocabulary) + target + eos; the loss is on the
target tokens and the end token only (Alpaca-style instruction tuning: no loss on the prompt).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from earlyexit.data.llm_tasks import SPLITS, read_examples, synthetic_symbols

SPECIALS = ("<pad>", "<bos>", "<eos>", "<sep>")


class WordVocab:
    """The synthetic task's tokenizer: one id per whitespace-separated symbol (no hub needed)."""

    def __init__(self, words: list[str]):
        self.words = list(SPECIALS) + list(words)
        self.ids = {w: i for i, w in enumerate(self.words)}
        self.pad_id, self.bos_id, self.eos_id, self.sep_id = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.words)

    def encode_prompt(self, text: str) -> list[int]:
        return [self.bos_id, *self._ids(text), self.sep_id]

    def encode_target(self, text: str) -> list[int]:
        return self._ids(text)

    def _ids(self, text: str) -> list[int]:
        try:
            return [self.ids[w] for w in text.split()]
        except KeyError as error:
            raise ValueError(f"symbol {error.args[0]!r} is not in the synthetic vocabulary") from None

    def decode(self, ids) -> str:
        return " ".join(self.words[i] for i in ids if i >= len(SPECIALS))


class HubTokenizer:
    """A hub causal LM's own tokenizer behind the same four calls."""

    def __init__(self, hub_id: str, revision: str | None):
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(hub_id, revision=revision)
        self.bos_id, self.eos_id = self.tok.bos_token_id, self.tok.eos_token_id
        self.pad_id = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0

    def __len__(self) -> int:
        return len(self.tok)

    def encode_prompt(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=True)["input_ids"]

    def encode_target(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids) -> str:
        return self.tok.decode(ids, skip_special_tokens=True).strip()


def tokenizer_for(backbone: dict, task: str, synthetic: dict):
    if backbone["source"] == "random":
        return WordVocab(synthetic_symbols(synthetic["symbols"]))
    return HubTokenizer(backbone["hub_id"], backbone.get("revision"))


@dataclass
class LMSplit:
    prompts: list[np.ndarray]
    targets: list[np.ndarray]         # target ids + eos
    references: list[str]             # the target texts (what ROUGE compares with)

    def __len__(self) -> int:
        return len(self.prompts)


def load_lm_splits(split_dir, tokenizer, max_prompt_len: int, max_target_len: int) -> dict[str, LMSplit]:
    """Tokenise the task's three JSON-lines splits; prompts keep their first tokens, targets too."""
    out = {}
    for split in SPLITS:
        rows = read_examples(f"{split_dir}/{split}.jsonl")
        prompts = [np.asarray(tokenizer.encode_prompt(r["prompt"])[:max_prompt_len], np.int64) for r in rows]
        targets = [np.asarray(tokenizer.encode_target(r["target"])[:max_target_len - 1] + [tokenizer.eos_id], np.int64)
                   for r in rows]
        out[split] = LMSplit(prompts, targets, [r["target"] for r in rows])
    return out


@dataclass
class LMBatch:
    indices: np.ndarray
    input_ids: torch.Tensor           # [B, T] right-padded
    labels: torch.Tensor              # [B, T] next token at target positions, -100 elsewhere

    def to(self, device) -> "LMBatch":
        return LMBatch(self.indices, self.input_ids.to(device), self.labels.to(device))


def collate_lm(split: LMSplit, indices, pad_id: int) -> LMBatch:
    rows = [np.concatenate([split.prompts[i], split.targets[i]]) for i in indices]
    width = max(len(r) for r in rows) - 1
    ids = np.full((len(rows), width), pad_id, np.int64)
    labels = np.full((len(rows), width), -100, np.int64)
    for b, (i, row) in enumerate(zip(indices, rows)):
        ids[b, :len(row) - 1] = row[:-1]
        start = len(split.prompts[i]) - 1            # the position that predicts the first target token
        labels[b, start:len(row) - 1] = row[start + 1:]
    return LMBatch(np.asarray(indices), torch.from_numpy(ids), torch.from_numpy(labels))


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def load_causal_lm(backbone: dict, vocab_size: int, seed: int, device):
    """The backbone: a random LLaMA of the entry's shape (seeded) or the hub checkpoint."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if backbone["source"] == "random":
        torch.manual_seed(seed)
        config = LlamaConfig(vocab_size=vocab_size, hidden_size=backbone["hidden_size"],
                             intermediate_size=backbone["intermediate_size"], num_hidden_layers=backbone["num_layers"],
                             num_attention_heads=backbone["num_attention_heads"],
                             num_key_value_heads=backbone["num_key_value_heads"],
                             max_position_embeddings=backbone["max_position_embeddings"], tie_word_embeddings=False)
        return LlamaForCausalLM(config).to(device)
    dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    return AutoModelForCausalLM.from_pretrained(backbone["hub_id"], revision=backbone.get("revision"),
                                                dtype=dtype).to(device)
