"""ExitSchedule: active tokens form a prefix; counts are host-side Python ints."""

import pytest
import torch

from earlyexit.models.schedule import build_exit_schedule


def test_sorted_prefix_and_counts():
    exits = torch.tensor([[3, 1, 2, 3, 0], [3, 3, 3, 0, 0]])
    s = build_exit_schedule(exits, 3)
    assert s.permutation.tolist() == [[0, 3, 2, 1, 4], [0, 1, 2, 3, 4]]
    assert s.exit_layers.tolist() == [[3, 3, 2, 1, 0], [3, 3, 3, 0, 0]]
    assert s.active_counts == [4, 3, 3]
    assert all(isinstance(c, int) for c in s.active_counts)
    # per-row active counts: layer 1 (4, 3), layer 2 (3, 3), layer 3 (2, 3)
    assert s.prefix_exact == [False, True, False]
    # flat positions (row * width + column) of the tokens really active at each inexact layer
    assert s.active_index[0].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert s.active_index[1] is None
    assert s.active_index[2].tolist() == [0, 1, 3, 4, 5]
    # the same tokens in the whole [B, T=5] batch (row * 5 + column), for the in-place forward
    assert s.token_index[0].tolist() == [0, 1, 2, 3, 5, 6, 7]
    assert s.token_index[1] is None
    assert s.token_index[2].tolist() == [0, 1, 5, 6, 7]
    assert s.key_mask[:, 0, 0].tolist() == [[True] * 4 + [False], [True] * 3 + [False] * 2]
    assert not s.identity


def test_full_model_schedule_is_identity_and_exact():
    s = build_exit_schedule(torch.full((2, 6), 4), 4)
    assert s.identity and s.active_counts == [6] * 4 and all(s.prefix_exact)


def test_cls_stays_first_when_pinned_to_last_layer():
    exits = torch.tensor([[4, 4, 1, 4, 2]])
    s = build_exit_schedule(exits, 4)
    assert s.permutation[0, 0] == 0


def test_out_of_range_layers_rejected():
    with pytest.raises(ValueError, match="0..3"):
        build_exit_schedule(torch.tensor([[4, 1]]), 3)


def test_collate_carries_the_padding_mask_and_host_lengths_beside_the_same_schedule():
    """The one runner's batches: the schedule is what build_exit_schedule gives the padded exits, and
    the padding mask and host lengths (for models that take a mask) say the same real tokens."""
    import numpy as np

    from earlyexit.data.batching import collate
    from earlyexit.data.encoded import EncodedSplit

    lengths = [5, 2, 4]
    split = EncodedSplit(input_ids=[np.arange(3, 3 + n) for n in lengths], token_type_ids=None,
                         labels=np.zeros(3, dtype=np.int64),
                         exit_layers=[np.array([3, 1, 2, 3, 1])[:n] for n in lengths])
    batch = collate(split, np.array([2, 0, 1]), pad_id=0, num_layers=3)
    padded = torch.tensor([[3, 1, 2, 3, 0], [3, 1, 2, 3, 1], [3, 1, 0, 0, 0]])
    expected = build_exit_schedule(padded, 3)
    assert batch.schedule.permutation.tolist() == expected.permutation.tolist()
    assert batch.schedule.active_counts == expected.active_counts
    assert batch.lengths.tolist() == [4, 5, 2]
    assert batch.attention_mask.tolist() == (padded > 0).long().tolist()
