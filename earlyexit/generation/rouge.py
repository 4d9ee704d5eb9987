"""ROUGE of generated summaries with the `rouge-score` package (F1 x 100, mean over instances).

English (baselines-spec section 4): ROUGE-1/2 and summary-level ROUGE-Lsum with the Porter stemmer,
sentences separated by newlines (generated text is split after sentence-final punctuation).
Chinese (CSL, TTNews): character tokens, as the CPT repo scores them (it decodes into
space-separated characters), and sentence-level ROUGE-L. Either way the result's `rougeL` holds
the ROUGE-L variant of the language, named in `rougeL_variant`.
"""

from __future__ import annotations

import re

import numpy as np

LANGUAGES = ("en", "zh")


class _CharTokenizer:
    """Every non-space character is a token (rouge-score's default keeps only [a-z0-9])."""

    def tokenize(self, text: str) -> list[str]:
        return [ch for ch in text.lower() if not ch.isspace()]


def sentences_on_lines(text: str) -> str:
    """One sentence per line, as rougeLsum expects (existing line breaks are kept)."""
    parts = [p.strip() for line in text.splitlines() for p in re.split(r"(?<=[.!?])\s+", line)]
    return "\n".join(p for p in parts if p)


def rouge(predictions: list[str], references: list[str], language: str) -> dict:
    """ROUGE-1/2/L (percent, mean over instances) and `score`, their mean."""
    return rouge_with_instances(predictions, references, language)[0]


def rouge_with_instances(predictions: list[str], references: list[str], language: str) -> tuple[dict, np.ndarray]:
    """`rouge`'s result and each instance's score (mean of its ROUGE-1/2/L F1 x 100), whose mean is
    the result's `score`: what the claims ledger resamples."""
    from rouge_score import rouge_scorer

    if language not in LANGUAGES:
        raise ValueError(f"ROUGE for language {language!r} is not defined (known: {', '.join(LANGUAGES)})")
    if len(predictions) != len(references) or not predictions:
        raise ValueError(f"ROUGE needs as many predictions as references (got {len(predictions)} and {len(references)})")
    if language == "en":
        variant = "rougeLsum"
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", variant], use_stemmer=True)
        pairs = [(sentences_on_lines(r), sentences_on_lines(p)) for p, r in zip(predictions, references)]
    else:
        variant = "rougeL"
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", variant], tokenizer=_CharTokenizer())
        pairs = [(r, p) for p, r in zip(predictions, references)]
    scores = [scorer.score(reference, prediction) for reference, prediction in pairs]
    out = {name: 100.0 * float(np.mean([s[key].fmeasure for s in scores]))
           for name, key in (("rouge1", "rouge1"), ("rouge2", "rouge2"), ("rougeL", variant))}
    # one number to select checkpoints on: the mean of the three, as summarization papers compare
    out["score"] = float(np.mean([out["rouge1"], out["rouge2"], out["rougeL"]]))
    out["rougeL_variant"] = variant
    per_instance = np.array([100.0 * (s["rouge1"].fmeasure + s["rouge2"].fmeasure + s[variant].fmeasure) / 3
                             for s in scores])
    return out, per_instance
