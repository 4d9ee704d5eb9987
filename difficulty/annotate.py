"""The multi-exit annotator (hashee-spec 2.1, 2.3): fine-tune internal classifiers on every layer
jointly (loss = unweighted sum of the per-layer cross-entropies), then label each instance of the
labelling split with one bit per layer, 1 = that layer's classifier predicts the gold label.

Sentence level: NLI pairs, 3 classes. Token level: NER tags, a word's tag copied to all its
pieces; [CLS]/[SEP] and padding are neither trained on nor labelled. The checkpoint is chosen by
the last layer's accuracy on a validation split carved from the training split (the authors used
the dev set they then labelled).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from difficulty.baseline import carve_validation
from difficulty.encoding import batches, encode_pairs, encode_words, pad_batch
from difficulty.formats import PairSet, TokenSet
from difficulty.models import MultiExit
from difficulty.predictors import load_backbone
from difficulty.sources import GOLD_LABELS
from earlyexit.plumbing.torch_setup import pick_device
from earlyexit.training.loop import TrainHooks, train_loop
from difficulty.settings import loop_config

log = logging.getLogger("difficulty.annotate")


class _Task:
    """Encoded inputs + gold ids for one split; sentence gold (N,), token gold per-piece arrays."""

    def __init__(self, rows, tokenizer, token_level: bool, max_len: int, tag_ids: dict | None):
        self.token_level = token_level
        if token_level:
            self.enc, self.pieces, word_index = encode_words(tokenizer, [w for w, _ in rows], max_len)
            self.gold = [np.asarray([tag_ids[tags[j]] for j in words], dtype=int)
                         for (_, tags), words in zip(rows, word_index)]
        else:
            self.enc = encode_pairs(tokenizer, [r[0] for r in rows], [r[1] for r in rows], max_len)
            self.gold = np.asarray([GOLD_LABELS.index(r[2]) for r in rows], dtype=int)

    def __len__(self):
        return len(self.enc)


def _layer_logits(model, task: _Task, index, pad_id, device):
    """(L, cells, classes) logits and the (cells,) gold ids of the rows in index."""
    batch = pad_batch(task.enc, index, pad_id, device)
    logits = model(batch)
    if task.token_level:
        return logits[:, batch["cell_mask"]], np.concatenate([task.gold[i] for i in index])
    return logits, task.gold[index]


def layer_correct(model, task: _Task, pad_id, device, batch_size: int, index=None) -> list:
    """Per instance, a (cells, L) 0/1 array: layer l's argmax == gold. Sentence cells = 1."""
    index = np.arange(len(task)) if index is None else np.asarray(index)
    model.eval()
    out = []
    with torch.no_grad():
        for part in batches(len(index), batch_size, None):
            rows = index[part]
            logits, gold = _layer_logits(model, task, rows, pad_id, device)
            correct = (logits.argmax(-1).cpu().numpy() == gold[None, :]).T.astype(np.int8)  # (cells, L)
            sizes = [len(task.gold[i]) for i in rows] if task.token_level else [1] * len(rows)
            out += np.split(correct, np.cumsum(sizes)[:-1])
    return out


def train_annotator(rows, *, spec, token_level: bool, settings: dict, val_fraction: float, seed: int,
                    device: str = "auto", tag_ids: dict | None = None, where: str = "annotator"):
    """Fit the multi-exit model on `rows` (settings: a TrainConfig mapping; `where` names its config
    key in errors); returns (model, tokenizer, report)."""
    cfg = loop_config(settings, where)
    dev = pick_device(device)
    base, tokenizer = load_backbone(spec, seed)
    n_classes = len(tag_ids) if token_level else len(GOLD_LABELS)
    model = MultiExit(base, n_classes, token_level).to(dev)
    task = _Task(rows, tokenizer, token_level, cfg.max_seq_len, tag_ids)
    train_idx, val_idx = carve_validation(len(task), val_fraction, seed)
    pad_id = tokenizer.pad_token_id

    def loss_fn(index):  # positions in train_idx
        rows_ = train_idx[index]
        logits, gold = _layer_logits(model, task, rows_, pad_id, dev)
        target = torch.as_tensor(gold, device=dev)
        return sum(F.cross_entropy(layer, target) for layer in logits)  # unweighted sum over layers

    def evaluate():
        correct = np.concatenate(layer_correct(model, task, pad_id, dev, cfg.eval_batch_size, val_idx))
        accuracy = correct.mean(axis=0)
        log.info("validation accuracy per layer %s", " ".join(f"{a:.3f}" for a in accuracy))
        return {"select": float(accuracy[-1]), "validation_layer_accuracy": [round(float(a), 4) for a in accuracy]}

    hooks = TrainHooks(epoch_batches=lambda rng: batches(len(train_idx), cfg.batch_size, rng),
                       loss=loss_fn, evaluate=evaluate)
    result = train_loop(model, hooks, cfg, seed, desc="annotator")
    selected = result["selected"]
    report = {"backbone": spec.name, "layers": model.n_layers, "training": cfg.as_dict(), "train_rows": len(train_idx),
              "validation_rows": len(val_idx), "selected_epoch": selected["epoch"], "selected_step": selected["step"],
              "validation_layer_accuracy": selected["validation_layer_accuracy"],
              "history": [{"epoch": h["epoch"], "step": h["step"], "loss": h["loss"], "last_layer_accuracy": h["select"]}
                          for h in result["history"]],
              "train_seconds": result["train_seconds"]}
    return model, tokenizer, report


def label_pairs(model, tokenizer, rows, settings: dict, device: str = "auto") -> PairSet:
    cfg = loop_config(settings, "annotator")   # settings already checked by train_annotator
    dev = pick_device(device)
    task = _Task(rows, tokenizer, False, cfg.max_seq_len, None)
    bits = np.concatenate(layer_correct(model, task, tokenizer.pad_token_id, dev, cfg.eval_batch_size))
    return PairSet([r[0] for r in rows], [r[1] for r in rows], bits)


def label_tokens(model, tokenizer, rows, settings: dict, tag_ids: dict, device: str = "auto") -> TokenSet:
    cfg = loop_config(settings, "annotator")   # settings already checked by train_annotator
    dev = pick_device(device)
    task = _Task(rows, tokenizer, True, cfg.max_seq_len, tag_ids)
    bits = layer_correct(model, task, tokenizer.pad_token_id, dev, cfg.eval_batch_size)
    keep = [i for i, p in enumerate(task.pieces) if len(p)]  # a sentence with no pieces has no cells
    return TokenSet([task.pieces[i] for i in keep], [bits[i] for i in keep])


def tag_vocabulary(*row_sets) -> dict:
    """Tag -> id over every split (a tag absent from training simply can never be predicted)."""
    tags = sorted({t for rows in row_sets for _, tag_list in rows for t in tag_list})
    return {t: i for i, t in enumerate(tags)}
