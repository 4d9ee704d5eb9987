"""The elue-minilm preset keeps every real ELUE instance whole: the authors never truncate these
tasks, and a cut pair loses the end of its second sentence (at 64 word pieces, 23% of MRPC's
training pairs). Skipped when the preset's data folder is absent."""

import pytest

from earlyexit.models.backbones import BackboneSpec, load_tokenizer
from earlyexit.data.elue import load_elue_task
from earlyexit.data.tasks import get_task
from tests.conftest import real_data_preset

CONFIG, ELUE, pytestmark = real_data_preset("elue-minilm")


@pytest.mark.parametrize("task_name", ["SST-2", "MRPC", "STS-B"])
def test_preset_max_seq_len_cuts_no_instance(task_name):
    assert task_name in CONFIG["tasks"]
    training = CONFIG["training"]
    limit = training.get("max_seq_len_per_task", {}).get(task_name, training["max_seq_len"])
    (name, entry), = CONFIG["backbones"].items()
    tokenizer = load_tokenizer(BackboneSpec.from_config(name, entry))
    task = get_task(task_name)
    for split, examples in load_elue_task(ELUE, task).items():
        second = [e.text_b for e in examples] if task.pair else None
        longest = max(map(len, tokenizer([e.text_a for e in examples], second)["input_ids"]))
        assert longest <= limit, f"{task_name} {split}: {longest} word pieces > max_seq_len {limit}"
