"""Shared fixtures: tiny randomly initialised BERT/RoBERTa classifiers (fast, offline)."""

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def tiny_classifier(kind: str = "bert", num_layers: int = 4, num_labels: int = 3, seed: int = 0):
    from transformers import (BertConfig, BertForSequenceClassification, RobertaConfig,
                              RobertaForSequenceClassification)

    torch.manual_seed(seed)
    common = dict(vocab_size=120, hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=4,
                  intermediate_size=64, num_labels=num_labels, max_position_embeddings=64)
    if kind == "roberta":
        return RobertaForSequenceClassification(RobertaConfig(pad_token_id=1, **common)).eval()
    return BertForSequenceClassification(BertConfig(**common)).eval()


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread per test: the same numbers whatever the machine, and no oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def padded_batch():
    """Three rows of different real lengths; row 0 uses the full width."""
    torch.manual_seed(1)
    ids = torch.randint(5, 120, (3, 11))
    ids[:, 0] = 2
    lengths = torch.tensor([11, 7, 4])
    real = torch.arange(11)[None, :] < lengths[:, None]
    return ids, real, lengths
