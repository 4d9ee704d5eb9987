"""Summarization on the one training loop: tokenised source/target splits, teacher-forced
fine-tuning hooks, generation (the HF model's greedy or beam search) and ROUGE.

Tokenised splits live in the task x backbone npz of `encoded.py`: the sources as the usual
EncodedSplit (so hash fitting reads them like any task's inputs) plus, per split, the target ids,
the reference summaries and the lead-1 baseline (the first source sentence) as extra arrays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from earlyexit.data.encoded import EncodedSplit, load_encoded, save_encoded
from earlyexit.plumbing.files import atomic_write_json, read_npz
from earlyexit.training.state import StateFile, file_digest
from earlyexit.training.loop import TrainConfig, TrainHooks, train_loop

SPLITS = ("train", "dev", "test")


@dataclass
class Seq2SeqSplit:
    sources: EncodedSplit            # input_ids (+ exit_layers once attached)
    targets: list[np.ndarray]        # label ids (the tokenizer's encoding of the summary)
    references: list[str]            # the summaries as text (what ROUGE compares with)
    leads: list[str]                 # the first source sentence (the lead-1 baseline)

    def __len__(self) -> int:
        return len(self.targets)


def _ragged(ids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate(ids) if ids else np.zeros(0, np.int64)), np.concatenate([[0], np.cumsum([len(x) for x in ids])])


def tokenize_summarization(*, task, split_dir, backbone, max_source_len: int, max_target_len: int,
                           out_npz, out_meta) -> dict:
    """Tokenise train/dev/test pairs once per task x backbone; the meta JSON records what hashes need."""
    from earlyexit.data.summarization import first_sentence, read_pairs
    from earlyexit.generation.seq2seq_backbones import load_seq2seq_tokenizer, seq2seq_depths

    tokenizer = load_seq2seq_tokenizer(backbone)
    splits, extra = {}, {}
    for split in SPLITS:
        pairs = read_pairs(Path(split_dir) / f"{split}.tsv")
        sources = tokenizer([p.source for p in pairs], truncation=True, max_length=max_source_len)["input_ids"]
        targets = tokenizer([p.target for p in pairs], truncation=True, max_length=max_target_len)["input_ids"]
        splits[split] = EncodedSplit([np.asarray(x, np.int64) for x in sources], None, np.zeros(len(pairs), np.int64))
        extra[f"{split}_tgtids"], extra[f"{split}_tgtoffsets"] = _ragged([np.asarray(x, np.int64) for x in targets])
        extra[f"{split}_references"] = np.array([p.target for p in pairs], dtype=str)
        extra[f"{split}_leads"] = np.array([first_sentence(p.source) for p in pairs], dtype=str)
    encoder_layers, decoder_layers = seq2seq_depths(backbone, download=True)
    meta = {
        "task": task.name, "backbone": backbone.name, "kind": "summarization", "max_seq_len": max_source_len,
        "max_target_len": max_target_len, "vocab_size": len(tokenizer),
        "special_ids": sorted(map(int, tokenizer.all_special_ids)), "pad_id": int(tokenizer.pad_token_id),
        "num_layers": encoder_layers, "decoder_layers": decoder_layers, "num_labels": 0,
        "mean_tokens": {s: float(splits[s].lengths.mean()) for s in SPLITS},
        "mean_target_tokens": {s: float(np.diff(extra[f"{s}_tgtoffsets"]).mean()) for s in SPLITS},
        # sources cut at max_source_len, per split
        "cut_at_max_len": {s: int((splits[s].lengths >= max_source_len).sum()) for s in SPLITS},
    }
    save_encoded(out_npz, splits, extra)
    meta["sha256"] = file_digest(out_npz)
    atomic_write_json(out_meta, meta)
    return meta


def load_seq2seq_splits(path) -> dict[str, Seq2SeqSplit]:
    sources = load_encoded(path)
    out = {}
    z = read_npz(path)
    for split in SPLITS:
        ids, offsets = z[f"{split}_tgtids"], z[f"{split}_tgtoffsets"]
        out[split] = Seq2SeqSplit(sources[split], [ids[a:b] for a, b in zip(offsets[:-1], offsets[1:])],
                                  [str(x) for x in z[f"{split}_references"]], [str(x) for x in z[f"{split}_leads"]])
    return out


@dataclass
class Seq2SeqBatch:
    indices: np.ndarray
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor             # padding -100
    schedule: object                 # earlyexit.models.schedule.ExitSchedule

    def to(self, device) -> "Seq2SeqBatch":
        return Seq2SeqBatch(self.indices, self.input_ids.to(device), self.attention_mask.to(device),
                            self.labels.to(device), self.schedule.to(device))


def collate_seq2seq(split: Seq2SeqSplit, indices: np.ndarray, pad_id: int, num_layers: int) -> Seq2SeqBatch:
    from earlyexit.data.batching import collate

    batch = collate(split.sources, indices, pad_id, num_layers)     # ids, exit schedule (padding exit 0)
    width = max(len(split.targets[i]) for i in indices)
    labels = np.full((len(indices), width), -100, dtype=np.int64)
    for row, i in enumerate(indices):
        labels[row, :len(split.targets[i])] = split.targets[i]
    return Seq2SeqBatch(batch.indices, batch.input_ids, _source_mask(split, indices, batch.input_ids.shape[1]),
                        torch.from_numpy(labels), batch.schedule)


def _source_mask(split: Seq2SeqSplit, indices: np.ndarray, width: int) -> torch.Tensor:
    lengths = torch.tensor([len(split.sources.input_ids[i]) for i in indices])
    return (torch.arange(width)[None, :] < lengths[:, None]).long()


def generation_kwargs(generation: dict) -> dict:
    """The config's `summarization.generation` as HF generate() arguments."""
    kwargs = {"num_beams": generation["num_beams"], "max_new_tokens": generation["max_new_tokens"],
              "min_new_tokens": generation["min_new_tokens"], "no_repeat_ngram_size": generation["no_repeat_ngram_size"],
              "do_sample": False}
    if generation["num_beams"] > 1:     # beam-only settings (greedy search warns about them)
        kwargs.update(length_penalty=generation["length_penalty"], early_stopping=True)
    return kwargs


@torch.no_grad()
def generate_split(model, split: Seq2SeqSplit, tokenizer, generation: dict, batch_size: int, pad_id: int,
                   device: torch.device) -> tuple[list[str], np.ndarray]:
    """Decoded summaries and the number of generated tokens per instance (decoder steps: every token
    after the start token up to and including the end token), in the split's order."""
    from earlyexit.data.batching import evaluation_batches

    model.eval()
    texts: list[str] = [""] * len(split)
    steps = np.zeros(len(split), dtype=np.int64)
    end = model.hf.generation_config.eos_token_id
    for indices in evaluation_batches(split.sources, batch_size):
        batch = collate_seq2seq(split, indices, pad_id, model.num_layers).to(device)
        out = model.generate(batch.input_ids, batch.attention_mask, batch.schedule,
                             **generation_kwargs(generation)).cpu()[:, 1:]                # drop the start token
        for row, i in enumerate(batch.indices):
            tokens = out[row]
            stop = (tokens == end).nonzero()
            n = int(stop[0, 0]) + 1 if len(stop) else int((tokens != pad_id).sum())
            steps[i] = n
            texts[i] = tokenizer.decode(tokens[:n], skip_special_tokens=True).strip()
    return texts, steps


def fine_tune_seq2seq(model, splits: dict[str, Seq2SeqSplit], *, tokenizer, language: str, cfg: TrainConfig,
                      generation: dict, seed: int, pad_id: int, device: torch.device, progress: bool = True,
                      state: StateFile | None = None) -> dict:
    """Teacher-forced training on the one loop, dev selection on ROUGE of generated summaries
    (`score` = mean of ROUGE-1/2/L), then the test set generated once with the selected weights."""
    from earlyexit.data.batching import training_batches
    from earlyexit.training.fine_tuning import autocast
    from earlyexit.generation.rouge import rouge

    model.to(device)
    train = splits["train"]

    def loss(indices):
        batch = collate_seq2seq(train, indices, pad_id, model.num_layers).to(device)
        with autocast(device, cfg.autocast_bf16(device)):
            return model(batch.input_ids, batch.attention_mask, batch.schedule, batch.labels).float()

    def score(name: str) -> tuple[dict, list[str], np.ndarray]:
        with autocast(device, cfg.autocast_bf16(device)):
            texts, steps = generate_split(model, splits[name], tokenizer, generation, cfg.eval_batch_size, pad_id, device)
        return rouge(texts, splits[name].references, language), texts, steps

    def evaluate_point():
        point = {"dev": score("dev")[0]}
        if cfg.track_best_on_test:
            point["test"] = score("test")[0]
        point["select"] = point["dev"]["score"]
        return point

    hooks = TrainHooks(epoch_batches=lambda rng: training_batches(train.sources, cfg.batch_size, rng),
                       loss=loss, evaluate=evaluate_point)
    result = train_loop(model, hooks, cfg, seed, progress=progress, state=state)
    tested = [p for p in result["history"] if "test" in p]
    best_on_test = max(tested, key=lambda p: p["test"]["score"], default=None)
    started = time.perf_counter()
    test_metrics, texts, steps = score("test")
    return {
        "dev": result["selected"]["dev"], "test": test_metrics, "selected_step": result["selected"]["step"],
        "best_on_test": None if best_on_test is None else {**best_on_test["test"], "step": best_on_test["step"]},
        "history": [{k: v for k, v in p.items() if k != "select"} for p in result["history"]],
        "train_seconds": result["train_seconds"], "eval_seconds": time.perf_counter() - started,
        "predictions": texts, "generated_tokens": steps,
    }
