"""Difficulty predictors: fit on train (checkpoint chosen on a validation split carved from train),
predict the per-layer 0/1 labels of test.

- majority:  per layer, the majority label of the training cells (difficulty.baseline, torch-free)
- linear-m:  masked mean of word embeddings -> linear (sentence level)
- linear-b:  one binary linear probe per layer on the FROZEN backbone's hidden state at that layer
             ([CLS] for sentences, each word piece for tokens); features are computed once.
             With model setting `frozen: false`, the authors' variant: the backbone is fine-tuned
             with the per-layer heads
- bilstm:    BiLSTM over word embeddings
- bert:      fine-tuned backbone with a linear head

Target forms (difficulty.target): `multilabel` (default; L logits, BCE, as the authors' code) or
`exit-layer` (L+1 classes, cross-entropy, decoded with difficulty.targets.bits_from_exit).
Majority and Linear-B are per-layer by construction and ignore the exit-layer form.

Training runs on the suite's one loop (earlyexit.training.loop.train_loop), evaluating once per epoch.
A predictor's settings are difficulty.<level>.training.<predictor> from the validated config: the
loop's (TrainConfig) plus the model's (MODEL_SETTINGS).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from difficulty import models, targets
from difficulty.baseline import carve_validation, cells_of, with_select
from difficulty.encoding import Encoded, batches, encode_pairs, encode_pieces, pad_batch
from difficulty.formats import PairSet, TokenSet
from difficulty.metrics import difficulty_metrics
from earlyexit.plumbing.torch_setup import pick_device
from earlyexit.training.loop import TrainConfig, TrainHooks, train_loop
from difficulty.settings import loop_config


# --- data ------------------------------------------------------------------------------------

def encode(data: PairSet | TokenSet, tokenizer, max_len: int) -> Encoded:
    if isinstance(data, TokenSet):
        return encode_pieces(tokenizer, data.tokens)
    return encode_pairs(tokenizer, data.text_a, data.text_b, max_len)


def gather_cells(logits: torch.Tensor, batch: dict) -> torch.Tensor:
    """(B, K) stays; (B, T, K) -> (cells, K) at the word-piece positions, row-major."""
    return logits[batch["cell_mask"]] if "cell_mask" in batch else logits


# --- objectives --------------------------------------------------------------------------------

class Objective:
    """Loss on gathered cells and decoding to 0/1 bits. form: multilabel | exit-layer."""

    def __init__(self, form: str, n_layers: int):
        if form not in ("multilabel", "exit-layer"):
            raise ValueError(f"config key 'difficulty.target': {form!r} is not one of multilabel, exit-layer")
        self.form, self.n_layers = form, n_layers

    @property
    def n_out(self) -> int:
        return self.n_layers + 1 if self.form == "exit-layer" else self.n_layers

    def loss(self, logits: torch.Tensor, gold: np.ndarray) -> torch.Tensor:
        if self.form == "exit-layer":
            target = torch.as_tensor(targets.exit_layer(gold) - 1, dtype=torch.long, device=logits.device)
            return F.cross_entropy(logits, target)
        return F.binary_cross_entropy_with_logits(logits, torch.as_tensor(gold, dtype=torch.float32, device=logits.device))

    def decode(self, logits: torch.Tensor) -> np.ndarray:
        if self.form == "exit-layer":
            return targets.bits_from_exit(logits.argmax(-1).cpu().numpy() + 1, self.n_layers)
        return (logits > 0).to(torch.int8).cpu().numpy()  # sigmoid <= 0.5 -> "wrong" (hashee-spec 3.4)


# --- models --------------------------------------------------------------------------------------

def load_backbone(spec, seed: int):
    """(encoder without head, tokenizer) for any configured source."""
    from earlyexit.models.backbones import load_classifier, load_tokenizer

    return load_classifier(spec, num_labels=2, seed=seed).base_model, load_tokenizer(spec)


def build_model(predictor: str, base, n_out: int, token_level: bool, model_settings: dict):
    embeddings = base.get_input_embeddings().weight.detach()
    if predictor == "linear-m":
        if token_level:
            raise ValueError("linear-m is a sentence-level predictor (mean pooling)")
        return models.LinearM(embeddings, n_out)
    if predictor == "bilstm":
        return models.BiLSTM(embeddings, n_out, token_level, hidden=model_settings["lstm_hidden"])
    if predictor == "bert":
        return models.FineTuned(base, n_out, token_level)
    raise ValueError(f"unknown trained predictor {predictor!r}")


MODEL_SETTINGS = {"bilstm": ("lstm_hidden",), "linear-b": ("frozen",)}  # shape the model, not the loop


def split_settings(predictor: str, settings: dict, where: str) -> tuple[TrainConfig, dict]:
    """(loop settings, model settings) of one predictor. A missing key, or another predictor's model
    setting (TrainConfig rejects it as unknown), raises ValueError naming `where.<key>`; the schema
    fills the model settings' defaults."""
    own = MODEL_SETTINGS.get(predictor, ())
    loop = loop_config({k: v for k, v in settings.items() if k not in own}, where)
    return loop, {k: settings[k] for k in own}


# --- training ------------------------------------------------------------------------------------

def train_network(model, data_train, enc_train, train_idx, eval_sets: dict, objective: Objective, score,
                  cfg: TrainConfig, seed: int, pad_id: int, device, keep: tuple = (), desc: str = "train") -> dict:
    """Fit `model` on data_train[train_idx]; at each evaluation point score every eval set.

    eval_sets: name -> (data, Encoded, index). score(pred_bits, gold_bits) -> metrics dict; the
    "validation" set's `select` entry picks the checkpoint. Returns train_loop's result plus, for
    the eval sets named in `keep`, the predictions (cells, L) at the selected checkpoint.
    """
    model.to(device)

    def forward_cells(enc, index):
        batch = pad_batch(enc, index, pad_id, device)
        return gather_cells(model(batch), batch)

    def loss_fn(index):
        rows = train_idx[index]
        return objective.loss(forward_cells(enc_train, rows), cells_of(data_train, rows))

    def predict(data, enc, index):
        out = [objective.decode(forward_cells(enc, index[b])) for b in batches(len(index), cfg.eval_batch_size, None)]
        return np.concatenate(out, axis=0), cells_of(data, index)

    def evaluate():
        record = {name: score(*predict(d, e, i)) for name, (d, e, i) in eval_sets.items()}
        return {"select": record["validation"]["select"], **record}

    hooks = TrainHooks(epoch_batches=lambda rng: batches(len(train_idx), cfg.batch_size, rng),
                       loss=loss_fn, evaluate=evaluate)
    result = train_loop(model, hooks, cfg, seed, desc=desc)
    with torch.no_grad():
        result["predictions"] = {name: predict(*eval_sets[name]) for name in keep}
    return result


def layer_features(base, enc: Encoded, layer_ids: list[int], pad_id: int, device, batch_size: int = 64) -> list:
    """Per instance, the frozen states read by the probes: (cells, L, H) ([CLS] at the sentence level)."""
    base.to(device).eval()
    out = []
    with torch.no_grad():
        for index in batches(len(enc), batch_size, None):
            batch = pad_batch(enc, index, pad_id, device)
            states = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          token_type_ids=batch["token_type_ids"], output_hidden_states=True).hidden_states
            stacked = torch.stack([states[layer] for layer in layer_ids], dim=2)  # (B, T, L, H)
            for k, i in enumerate(index):
                positions = torch.as_tensor(enc.cells[i]) if enc.cells is not None else torch.tensor([0])
                out.append(stacked[k, positions.to(device)].float().cpu())
    return out


def train_probes(features_train: list, data_train, train_idx, eval_sets: dict, score, cfg: TrainConfig, seed: int,
                 device, desc: str = "train") -> dict:
    """Linear-B on cached features: every cell (instance or word piece) is one training row."""
    def rows(features, index):
        return torch.cat([features[i] for i in index], dim=0)

    x_train = rows(features_train, train_idx).to(device)
    y_train = torch.as_tensor(cells_of(data_train, train_idx), dtype=torch.float32, device=device)
    probes = models.LayerProbes(x_train.shape[1], x_train.shape[2]).to(device)
    cached = {name: (rows(f, i).to(device), cells_of(d, i)) for name, (d, f, i) in eval_sets.items()}

    def predict(name):
        x, gold = cached[name]
        return (probes(x) > 0).to(torch.int8).cpu().numpy(), gold

    def loss_fn(index):
        index = torch.as_tensor(index, device=device)
        return F.binary_cross_entropy_with_logits(probes(x_train[index]), y_train[index])

    def evaluate():
        record = {name: score(*predict(name)) for name in cached}
        return {"select": record["validation"]["select"], **record}

    hooks = TrainHooks(epoch_batches=lambda rng: batches(x_train.shape[0], cfg.batch_size, rng),
                       loss=loss_fn, evaluate=evaluate)
    return train_loop(probes, hooks, cfg, seed, desc=desc)


def run_predictor(predictor: str, train, test, *, spec, settings: dict, target: str, select_on: str,
                  val_fraction: float, seed: int, device: str = "auto", where: str = "training") -> dict:
    """Fit one trained predictor on a model-defined dataset and score it on test (Majority:
    difficulty.baseline.majority_run). `where` names the settings' config key in errors.
    Returns the run record."""
    token_level = isinstance(train, TokenSet)
    n_layers = train.n_layers if token_level else train.labels.shape[1]
    train_idx, val_idx = carve_validation(len(train), val_fraction, seed)

    def score(pred, gold):
        return with_select(difficulty_metrics(pred, gold), select_on)

    dev = pick_device(device)
    cfg, model_settings = split_settings(predictor, settings, where)
    record = {"backbone": spec.name, "training": cfg.as_dict(), "model_settings": model_settings,
              "rows": {"train": len(train_idx), "validation": len(val_idx), "test": len(test)}}
    base, tokenizer = load_backbone(spec, seed)
    enc_train, enc_test = encode(train, tokenizer, cfg.max_seq_len), encode(test, tokenizer, cfg.max_seq_len)
    test_idx = np.arange(len(test))

    layer_ids = models.probe_layers(n_layers, base.config.num_hidden_layers)
    desc = f"{predictor} seed {seed}"
    if predictor == "linear-b" and model_settings["frozen"]:
        feats_train = layer_features(base, enc_train, layer_ids, tokenizer.pad_token_id, dev, cfg.eval_batch_size)
        feats_test = layer_features(base, enc_test, layer_ids, tokenizer.pad_token_id, dev, cfg.eval_batch_size)
        eval_sets = {"validation": (train, feats_train, val_idx), "test": (test, feats_test, test_idx)}
        result = train_probes(feats_train, train, train_idx, eval_sets, score, cfg, seed, dev, desc)
        record["probe_layers"] = layer_ids
    else:
        if predictor == "linear-b":  # fine-tuned, per layer by construction
            objective = Objective("multilabel", n_layers)
            model = models.LayerHeads(base, layer_ids, token_level)
            record["probe_layers"] = layer_ids
        else:
            objective = Objective(target, n_layers)
            model = build_model(predictor, base, objective.n_out, token_level, model_settings)
        eval_sets = {"validation": (train, enc_train, val_idx), "test": (test, enc_test, test_idx)}
        result = train_network(model, train, enc_train, train_idx, eval_sets, objective, score, cfg, seed,
                               tokenizer.pad_token_id, dev, desc=desc)
    # The selected checkpoint's numbers are the result; the best test score over epochs is the
    # authors' test-set selection, kept aside for comparison only.
    selected = result["selected"]
    record.update(validation=selected["validation"], test=selected["test"], selected_epoch=selected["epoch"],
                  selected_step=selected["step"],
                  best_on_test=max((h["test"] for h in result["history"]), key=lambda m: m["select"]),
                  history=[{"epoch": h["epoch"], "step": h["step"], "loss": h["loss"],
                            "validation": _brief(h["validation"]), "test": _brief(h["test"])}
                           for h in result["history"]],
                  train_seconds=result["train_seconds"])
    return record


def _brief(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("precision", "recall", "f1", "mean_acc")}
