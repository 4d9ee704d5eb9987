"""Fine-tuning of a single-head sequence classifier on the one loop: token-batched models (the full
model, HashEE and the static rows, `fine_tune`) and a plain HF classifier (`classifier_hooks`,
`predict_classifier`: CascadeBERT's models).

Hooks for `training.train_loop`: cross-entropy (MSE for regression) on the head's logits, dev-set
selection, and the authors' best-on-test number kept aside (reported, never used to select).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from earlyexit.data.batching import EncodedSplit, collate, evaluation_batches, iterate, training_batches
from earlyexit.runs.metrics import compute_metrics
from earlyexit.training.state import StateFile
from earlyexit.training.loop import TrainConfig, TrainHooks, train_loop


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on `device` when asked (callers ask TrainConfig.autocast_bf16(device), which
    keeps CPU runs in fp32 unless training.cpu_bf16); a no-op context otherwise."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=bf16 and device.type in ("cuda", "cpu"))


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    logits = logits.float()
    if regression:
        return F.mse_loss(logits.squeeze(-1), labels.float())
    return F.cross_entropy(logits, labels)


@torch.no_grad()
def predict(model, split: EncodedSplit, cfg: TrainConfig, pad_id: int, device: torch.device,
            regression: bool) -> np.ndarray:
    """Predicted class (or score) per instance, in the split's order."""
    model.eval()
    out = np.zeros(len(split), dtype=np.float64 if regression else np.int64)
    for batch in iterate(split, evaluation_batches(split, cfg.eval_batch_size), pad_id, model.num_layers):
        batch = batch.to(device)
        with autocast(device, cfg.autocast_bf16(device)):
            logits = model(batch.input_ids, batch.token_type_ids, batch.schedule).float()
        out[batch.indices] = (logits.squeeze(-1) if regression else logits.argmax(-1)).cpu().numpy()
    return out


@torch.no_grad()
def predict_classifier(model, split: EncodedSplit, batch_size: int, pad_id: int, device: torch.device, bf16: bool,
                       regression: bool = False) -> np.ndarray:
    """Predicted class (or score, for regression) per instance of one HF *ForSequenceClassification
    model (no exit schedule: every token through every layer), in the split's order."""
    from earlyexit.models.multi_exit import device_batch

    model.eval()
    out = np.zeros(len(split), dtype=np.float64 if regression else np.int64)
    for indices in evaluation_batches(split, batch_size):
        ids, types, mask, _ = device_batch(split, indices, pad_id, device)
        with autocast(device, bf16):
            logits = model(input_ids=ids, token_type_ids=types, attention_mask=mask).logits.float()
        out[indices] = (logits[:, 0] if regression else logits.argmax(-1)).cpu().numpy()
    return out


def classifier_hooks(model, train: EncodedSplit, dev: EncodedSplit, *, metric: str, cfg: TrainConfig, pad_id: int,
                     device: torch.device, regression: bool = False) -> TrainHooks:
    """Hooks of the one loop that fine-tune one HF *ForSequenceClassification model on `train`
    (cross-entropy, MSE for regression) and select on its `dev` score."""
    from earlyexit.models.multi_exit import device_batch

    def loss(indices):
        ids, types, mask, labels = device_batch(train, indices, pad_id, device)
        with autocast(device, cfg.autocast_bf16(device)):
            logits = model(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
        return classification_loss(logits, labels, regression)

    def evaluate_point():
        scores = compute_metrics(metric, predict_classifier(model, dev, cfg.eval_batch_size, pad_id, device, cfg.autocast_bf16(device),
                                                            regression), dev.labels)
        return {"dev": scores, "select": scores["score"]}

    return TrainHooks(epoch_batches=lambda rng: training_batches(train, cfg.batch_size, rng), loss=loss,
                      evaluate=evaluate_point)


def evaluate(model, split, metric, cfg, pad_id, device, regression) -> dict:
    return compute_metrics(metric, predict(model, split, cfg, pad_id, device, regression), split.labels)


def fine_tune(model, train: EncodedSplit, dev: EncodedSplit, test: EncodedSplit, *, metric: str,
              regression: bool, cfg: TrainConfig, seed: int, pad_id: int, device: torch.device,
              progress: bool = True, state: StateFile | None = None, before_step=None) -> dict:
    """Train, select the checkpoint with the best dev score, evaluate it on test; with `state`,
    resumably (see `training.train_loop`); `before_step` is the loop's hook of that name.

    Returns dev/test metrics of the selected checkpoint, its prediction per test instance, the best test score seen at any evaluation
    point (the authors' test-set selection, reported separately), the evaluation history and timings.
    """
    model.to(device)

    def loss(indices):
        batch = collate(train, indices, pad_id, model.num_layers).to(device)
        with autocast(device, cfg.autocast_bf16(device)):
            logits = model(batch.input_ids, batch.token_type_ids, batch.schedule)
        return classification_loss(logits, batch.labels, regression)

    def evaluate_point():
        point = {"dev": evaluate(model, dev, metric, cfg, pad_id, device, regression)}
        if cfg.track_best_on_test:
            point["test"] = evaluate(model, test, metric, cfg, pad_id, device, regression)
        point["select"] = point["dev"]["score"]
        return point

    hooks = TrainHooks(epoch_batches=lambda rng: training_batches(train, cfg.batch_size, rng),
                       loss=loss, evaluate=evaluate_point, before_step=before_step)
    result = train_loop(model, hooks, cfg, seed, progress=progress, state=state)
    tested = [p for p in result["history"] if "test" in p]
    best_on_test = max(tested, key=lambda p: p["test"]["score"], default=None)

    started = time.perf_counter()
    test_predictions = predict(model, test, cfg, pad_id, device, regression)
    test_metrics = compute_metrics(metric, test_predictions, test.labels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {
        "dev": result["selected"]["dev"],
        "test": test_metrics,
        "test_predictions": test_predictions,     # per test instance, test order (the run record keeps them)
        "selected_step": result["selected"]["step"],
        "best_on_test": None if best_on_test is None else {**best_on_test["test"], "step": best_on_test["step"]},
        "history": [{k: v for k, v in p.items() if k != "select"} for p in result["history"]],
        "train_seconds": result["train_seconds"],
        "eval_seconds": time.perf_counter() - started,
    }
