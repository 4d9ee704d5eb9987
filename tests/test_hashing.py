"""Hash functions on tiny hand-made corpora with known answers."""

import math

import numpy as np
import pytest

from earlyexit.hashing.functions import (TokenExitHash, bucket_layers, clustered_hash, fit_hash, frequency_hash,
                               mutual_information_scores, random_consistent_hash, random_inconsistent_hash)

CLS, SEP, PAD = 101, 102, 0
SPECIAL = [PAD, 100, CLS, SEP, 103]


def seq(*ids):
    return np.array([CLS, *ids, SEP])


def test_bucket_layers_follow_the_authors_interval():
    assert bucket_layers(6, 6).tolist() == [1, 2, 3, 4, 5, 6]
    assert bucket_layers(12, 6).tolist() == [1, 3, 5, 7, 9, 11]
    assert bucket_layers(6, 3).tolist() == [1, 3, 5]
    with pytest.raises(ValueError, match="num_buckets"):
        bucket_layers(6, 7)


def test_frequency_hash_most_frequent_types_exit_first():
    # counts: 5 -> 4, 6 -> 3, 7 -> 2, 8 -> 1 ; two buckets of two types on a 4-layer model
    corpus = [seq(5, 5, 6, 7), seq(5, 6, 8), seq(5, 6, 7)]
    h = frequency_hash(corpus, vocab_size=200, special_ids=SPECIAL, num_layers=4, num_buckets=2)
    assert h.table[[5, 6, 7, 8]].tolist() == [1, 1, 3, 3]
    assert h.table[9] == 4            # never seen in train -> last layer
    assert h.assign(seq(5, 9)).tolist() == [4, 1, 4, 4]   # specials pinned to the last layer


def test_frequency_hash_ties_keep_first_seen_order_and_leftovers_join_last_bucket():
    corpus = [seq(9, 8, 7, 6, 5)]     # all count 1, first seen 9, 8, 7, 6, 5
    h = frequency_hash(corpus, 200, SPECIAL, num_layers=4, num_buckets=2)
    assert h.table[[9, 8, 7, 6, 5]].tolist() == [1, 1, 3, 3, 3]


def test_frequency_hash_token_balance_equalises_occurrences():
    corpus = [seq(*([5] * 6 + [6, 7, 8, 9, 10, 11]))]   # 5 holds half the occurrences
    h = frequency_hash(corpus, 200, SPECIAL, num_layers=2, num_buckets=2, balance="tokens")
    assert h.table[5] == 1 and h.table[[6, 7, 8, 9, 10, 11]].tolist() == [2] * 6


def test_mi_scores_known_values():
    # token 5 only with label 1; token 6 in both labels equally
    corpus = [seq(5, 6), seq(6), seq(5, 6), seq(6)]
    labels = [1, 0, 1, 0]
    types, scores = mutual_information_scores(corpus, labels, SPECIAL, num_labels=2)
    s = dict(zip(types.tolist(), scores.tolist()))
    n = 6.0  # non-special occurrences
    # token 5: p(x)=2/6, p(x,1)=2/6, p(y=1)=1/2 -> (2/6) ln(2 + 1e-6)
    assert s[5] == pytest.approx((2 / n) * math.log(2 + 1e-6))
    # token 6: p(x)=4/6, p(x,0)=p(x,1)=2/6 -> 2 * (2/6) ln(1 + 1e-6) ~ 0
    assert s[6] == pytest.approx(2 * (2 / n) * math.log(1 + 1e-6))
    assert s[5] > s[6]


def test_mi_hash_informative_token_exits_first_and_multiclass_works():
    corpus = [seq(5, 6), seq(6, 7), seq(6, 8)]
    h = fit_hash("mi", corpus, [0, 1, 2], vocab_size=200, special_ids=SPECIAL, num_layers=2, num_buckets=2,
                 num_labels=3, seed=0)
    assert h.table[6] == 2                     # appears with every label: least informative
    assert set(h.table[[5, 7, 8]].tolist()) <= {1, 2}


def test_mi_regression_labels_are_binned_at_quantiles_and_the_bin_count_matters():
    # scores 0..5: 2 bins (edge 2.5) give classes 000111; 3 bins (edges 5/3, 10/3) give 001122.
    # token 5 is in sentences 0-2, token 6 in sentences 0-1 (5 occurrences; p(x) = 3/5, 2/5).
    corpus = [seq(5, 6), seq(5, 6), seq(5), seq(), seq(), seq()]
    labels = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    eps = 1e-6

    def scores(bins):
        types, s = mutual_information_scores(corpus, labels, SPECIAL, num_labels=1, regression_bins=bins)
        return dict(zip(types.tolist(), s.tolist()))

    # 2 bins, p(y) = 1/2: both tokens sit only in class 0, each with ratio 2; token 5 has more mass
    two = scores(2)
    assert two[5] == pytest.approx(0.6 * math.log(2 + eps)) and two[6] == pytest.approx(0.4 * math.log(2 + eps))
    # 3 bins, p(y) = 1/3: token 6 alone fills class 0 (ratio 3), token 5 splits over classes 0 and 1
    three = scores(3)
    assert three[6] == pytest.approx(0.4 * math.log(3 + eps))
    assert three[5] == pytest.approx(0.4 * math.log(2 + eps) + 0.2 * math.log(1 + eps))
    # so the ranking flips, and fit_hash must pass `mi_regression_bins` through to see it
    for bins, first in ((2, 5), (3, 6)):
        h = fit_hash("mi", corpus, labels, vocab_size=200, special_ids=SPECIAL, num_layers=2, num_buckets=2,
                     num_labels=1, seed=0, mi_regression_bins=bins)
        assert h.table[first] == 1 and h.table[11 - first] == 2, f"{bins} bins"


def test_random_consistent_is_seeded_and_fixed_per_id():
    a = random_consistent_hash(1000, SPECIAL, 6, 3, seed=7)
    b = random_consistent_hash(1000, SPECIAL, 6, 3, seed=7)
    c = random_consistent_hash(1000, SPECIAL, 6, 3, seed=8)
    assert np.array_equal(a.table, b.table) and not np.array_equal(a.table, c.table)
    ordinary = np.setdiff1d(np.arange(1000), SPECIAL)
    assert set(np.unique(a.table[ordinary])) == {1, 3, 5} and set(a.table[SPECIAL]) == {6}
    ids = seq(5, 5, 5)
    assert len(set(a.assign(ids)[1:-1].tolist())) == 1   # same id -> same layer


def test_random_inconsistent_draws_per_occurrence_but_pins_specials():
    h = random_inconsistent_hash(SPECIAL, 6, 6)
    layers = h.assign(seq(*([5] * 200)), np.random.default_rng(0))
    assert layers[0] == 6 and layers[-1] == 6
    assert len(set(layers[1:-1].tolist())) == 6           # same token, many layers
    again = h.assign(seq(*([5] * 200)), np.random.default_rng(0))
    assert np.array_equal(layers, again)


def test_clustered_hash_orders_clusters_by_norm_sum():
    rng = np.random.default_rng(0)
    # 60 rows near the origin (small norms) and 10 rows far away: the big-norm-sum cluster exits later
    emb = np.concatenate([rng.normal(0, 0.01, (60, 4)), rng.normal(0, 0.01, (10, 4)) + 10.0])
    h = clustered_hash(emb, special_ids=[0], num_layers=2, num_buckets=2, seed=0, n_init=3)
    # norm sums: 60 x ~0.02 = ~1 vs 10 x 20 = 200 -> the far cluster is second (layer 2)
    assert set(h.table[1:60].tolist()) == {1} and set(h.table[60:].tolist()) == {2}
    assert h.table[0] == 2   # special


def test_save_load_round_trip(tmp_path):
    h = frequency_hash([seq(5, 6, 6)], 200, SPECIAL, 4, 2)
    h.stats = {"note": "x"}
    h.save(tmp_path / "h.npz", tmp_path / "h.json")
    g = TokenExitHash.load(tmp_path / "h.npz")
    assert np.array_equal(g.table, h.table) and g.name == "frequency" and g.special_ids == SPECIAL
    inc = random_inconsistent_hash(SPECIAL, 4, 2)
    inc.save(tmp_path / "i.npz", tmp_path / "i.json")
    assert TokenExitHash.load(tmp_path / "i.npz").table is None


def test_fit_hash_is_deterministic_and_summarised():
    corpus = [seq(*np.random.default_rng(i).integers(200, 300, 10)) for i in range(20)]
    labels = [i % 2 for i in range(20)]
    for name in ("frequency", "mi", "rand-cons"):
        a = fit_hash(name, corpus, labels, vocab_size=400, special_ids=SPECIAL, num_layers=6, num_buckets=3,
                     num_labels=2, seed=3)
        b = fit_hash(name, corpus, labels, vocab_size=400, special_ids=SPECIAL, num_layers=6, num_buckets=3,
                     num_labels=2, seed=3)
        assert np.array_equal(a.table, b.table)
        shares = a.stats["train_token_share_per_layer"]
        assert sum(shares.values()) == pytest.approx(1.0, abs=1e-5)  # shares are rounded to 6 places
    with pytest.raises(ValueError, match="unknown hash"):
        fit_hash("nope", corpus, labels, vocab_size=400, special_ids=SPECIAL, num_layers=6, num_buckets=3,
                 num_labels=2, seed=3)
