"""The decoder-LM data (earlyexit/data/llm_tasks.py, earlyexit/generation/llm_data.py): synth-recall's easy
tokens follow from the previous token and its context tokens from the prompt; hub splits are
size-checked; the loss covers the target and the end token only."""

import numpy as np
import pytest

from earlyexit.data.llm_tasks import HUB_SOURCES, _check_sizes, read_examples, synthetic_recall, write_examples
from earlyexit.generation.llm_data import WordVocab, collate_lm, load_lm_splits
from earlyexit.data.llm_tasks import synthetic_symbols


def test_synth_recall_half_easy_half_recalled():
    splits = synthetic_recall({"train": 50, "dev": 5, "test": 5}, symbols=12, length=5, seed=3)
    successor = {}
    for row in splits["train"]:
        prompt, target = row["prompt"].split(), row["target"].split()
        assert target[0::2] == prompt                          # recalled, in the prompt's order
        for x, b in zip(target[0::2], target[1::2]):
            assert successor.setdefault(x, b) == b             # the same successor wherever x occurs
    assert len(set(successor.values())) == len(successor)      # a bijection: b follows from x alone
    again = synthetic_recall({"train": 50, "dev": 5, "test": 5}, symbols=12, length=5, seed=3)
    assert again == splits
    with pytest.raises(ValueError, match="symbols >= length"):
        synthetic_recall({"train": 1, "dev": 1, "test": 1}, symbols=3, length=5, seed=0)


def test_hub_split_sizes_are_checked():
    source = HUB_SOURCES["xsum"]
    loaded = {"train": [0] * 204045, "validation": [0] * 11332, "test": [0] * 11333}
    with pytest.raises(ValueError, match="task xsum: hub split EdinburghNLP/xsum/test has 11333 rows, expected 11334"):
        _check_sizes("xsum", source, loaded)
    loaded["test"].append(0)
    _check_sizes("xsum", source, loaded)


def test_loss_is_on_the_target_and_end_token_only(tmp_path):
    rows = [{"prompt": "a1 a2", "target": "a1 b3 a2 b0"}, {"prompt": "a0", "target": "a0 b1"}]
    for split in ("train", "dev", "test"):
        write_examples(tmp_path / f"{split}.jsonl", rows)
    assert read_examples(tmp_path / "train.jsonl") == rows
    vocab = WordVocab(synthetic_symbols(4))
    split = load_lm_splits(tmp_path, vocab, max_prompt_len=8, max_target_len=8)["train"]
    batch = collate_lm(split, np.array([0, 1]), vocab.pad_id)
    first = batch.labels[0][batch.labels[0] != -100].tolist()
    assert first == [*vocab.encode_target("a1 b3 a2 b0"), vocab.eos_id]
    assert batch.input_ids[0, 0] == vocab.bos_id and vocab.sep_id in batch.input_ids[0].tolist()
    assert (batch.labels[1] != -100).sum() == 3                # a0 b1 <eos>; the padding is no label
    (tmp_path / "bad.jsonl").write_text('{"prompt": 1}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: needs string fields"):
        read_examples(tmp_path / "bad.jsonl")
