"""The paper's difficulty metric (hashee-spec 3.4, `MultiLabelMetric`).

Cells are (instance, layer) pairs, or (instance, token, layer) at the token level. The POSITIVE
class is label 0, "the layer's classifier is wrong / still difficult here". Micro precision,
recall and F1 pool all cells: P = |pred ∩ gold| / |pred| (0 when nothing is predicted),
R = |pred ∩ gold| / |gold|, F1 = 2PR / (P + R) (0 when R = 0). Also returned: per-layer accuracy,
their mean (the authors' selection key; not rounded to 3 decimals here) and TPR / TNR / G-mean.
"""

from __future__ import annotations

import numpy as np


def _as_cells(bits) -> np.ndarray:
    bits = np.asarray(bits)
    if bits.ndim == 1:
        bits = bits[:, None]
    return bits.reshape(-1, bits.shape[-1]).astype(np.int8)


def micro_prf(pred, gold, positive: int = 0) -> dict:
    pred, gold = _as_cells(pred), _as_cells(gold)
    if pred.shape != gold.shape:
        raise ValueError(f"prediction shape {pred.shape} != gold shape {gold.shape}")
    p, g = pred == positive, gold == positive
    tp, n_pred, n_gold = int((p & g).sum()), int(p.sum()), int(g.sum())
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if recall > 0 and precision > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "n_pred": n_pred, "n_gold": n_gold}


def difficulty_metrics(pred, gold, positive: int = 0) -> dict:
    """All metrics for (cells, L) 0/1 predictions and gold labels (1 = layer correct)."""
    pred, gold = _as_cells(pred), _as_cells(gold)
    out = micro_prf(pred, gold, positive)
    layer_acc = (pred == gold).mean(axis=0)
    # TPR / TNR in the authors' second (commented-out) metric, over pooled cells: sensitivity of
    # the 1s ("correct") and specificity (the 0s).
    ones, zeros = gold == 1, gold == 0
    tpr = float((pred[ones] == 1).mean()) if ones.any() else 0.0
    tnr = float((pred[zeros] == 0).mean()) if zeros.any() else 0.0
    out.update(layer_acc=[float(x) for x in layer_acc], mean_acc=float(layer_acc.mean()),
               tpr=tpr, tnr=tnr, gmean=float(np.sqrt(tpr * tnr)), cells=int(pred.shape[0]), layers=int(pred.shape[1]))
    return out


def majority_bits(train_gold) -> np.ndarray:
    """Per layer, the majority label of the training cells (a tie counts as 1, "correct")."""
    cells = _as_cells(train_gold)
    return (cells.mean(axis=0) >= 0.5).astype(np.int8)
