"""Per-test-instance outcomes kept in run records and sweep points, for the claims ledger's paired
bootstrap (analysis/claims.py): a score recomputed on a resample of test instances needs each
instance's prediction and gold answer, not only the aggregate.

Record form (`test_instances` of a run record, workflow/schemas/result.schema.yaml):
- kind "label" (classification): `predictions` = predicted class, `labels` = gold class;
- kind "value" (regression): `predictions` = predicted value, `labels` = gold value (a correlation
  can be bootstrapped from them);
- kind "rouge" (summarization): `scores` = each instance's ROUGE (mean of ROUGE-1/2/L F1 x 100; the
  record's test score is their mean).
Sweep files keep the gold answers once (`test_labels`) and each point's `test_predictions`.
"""

from __future__ import annotations

import numpy as np

KINDS = ("label", "value", "rouge")
DIGITS = 6   # regression values: 6 decimals keep Pearson/Spearman to ~1e-6 of the full-precision score


def kind_of(task) -> str:
    """The outcome kind of a TaskSpec."""
    if task.kind == "summarization":
        return "rouge"
    return "value" if task.is_regression else "label"


def compact(values, kind: str) -> list:
    """JSON-able per-instance values: ints for labels, rounded floats otherwise."""
    values = np.asarray(values)
    if kind == "label":
        return values.astype(np.int64).tolist()
    return [round(float(v), DIGITS) for v in values]


def record_field(task, predictions, labels=None) -> dict:
    """The run record's `test_instances` from a method's per-instance test outcome."""
    kind = kind_of(task)
    if kind == "rouge":
        return {"kind": kind, "scores": compact(predictions, kind)}
    if labels is None or len(labels) != len(predictions):
        raise ValueError(f"task {task.name}: {len(predictions)} test predictions need as many gold labels")
    return {"kind": kind, "predictions": compact(predictions, kind), "labels": compact(labels, kind)}
