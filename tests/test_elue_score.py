"""The ELUE score (analysis/elue_score.py) on hand-computed cases, and the published BERT-3L check."""

import math

import pytest

from analysis.elue_score import CurvePoint, elue_score, gap_to_curve, reference_at
from analysis.published import elasticbert_curve, load_published

# FLOPs relative to the 12-layer model: 1/12, 1/6, 1/4 -> speed-ups 12x, 6x, 4x
CURVE = [CurvePoint(1, 70.0, 12.0), CurvePoint(2, 76.0, 6.0), CurvePoint(3, 80.0, 4.0)]


def test_a_point_on_the_curve_scores_zero():
    for point in CURVE:
        gap = gap_to_curve(point.score, point.speedup, CURVE)
        assert gap.gap == pytest.approx(0.0) and not gap.extrapolated
    assert elue_score({"a": (76.0, 6.0), "b": (80.0, 4.0)}, {"a": CURVE, "b": CURVE}, ["a", "b"]) == (0.0, [])


def test_interpolation_is_linear_in_flops_between_adjacent_points():
    # speed-up 4.8x = FLOPs 5/24, halfway between 1/6 (76.0) and 1/4 (80.0): 78.0
    assert reference_at(CURVE, 4.8) == (pytest.approx(78.0), False)
    # 8x = FLOPs 1/8, halfway between 1/12 (70.0) and 1/6 (76.0): 73.0
    assert gap_to_curve(75.0, 8.0, CURVE).gap == pytest.approx(75.0 - 73.0)
    # order of the points does not matter; equal-cost points are averaged
    assert reference_at(CURVE[::-1], 4.8)[0] == pytest.approx(78.0)
    assert reference_at([CurvePoint(3, 78.0, 4.0), CurvePoint(3, 82.0, 4.0), CurvePoint(2, 76.0, 6.0)], 4.0)[0] == 80.0


def test_out_of_range_speedups_are_extrapolated_from_the_nearest_segment_and_flagged():
    # 3x = FLOPs 1/3, beyond 1/4: slope of the last segment (80-76)/(1/4-1/6) = 48 per unit FLOPs
    value, flagged = reference_at(CURVE, 3.0)
    assert flagged and value == pytest.approx(80.0 + 48.0 * (1 / 3 - 1 / 4))
    # 24x = FLOPs 1/24, below 1/12: slope of the first segment 6/(1/12) = 72
    value, flagged = reference_at(CURVE, 24.0)
    assert flagged and value == pytest.approx(70.0 - 72.0 * (1 / 12 - 1 / 24))
    score, extrapolated = elue_score({"a": (80.0, 3.0), "b": (80.0, 4.0)}, {"a": CURVE, "b": CURVE}, ["a", "b"])
    assert extrapolated == ["a"] and score == pytest.approx((-48.0 * (1 / 3 - 1 / 4)) / 2)
    # one point: a flat reference, flagged away from it
    assert reference_at([CurvePoint(3, 80.0, 4.0)], 2.0) == (80.0, True)
    assert reference_at([CurvePoint(3, 80.0, 4.0)], 4.0) == (80.0, False)


def test_a_missing_task_or_curve_leaves_the_score_undefined():
    assert math.isnan(elue_score({"a": (80.0, 4.0)}, {"a": CURVE, "b": CURVE}, ["a", "b"])[0])
    assert math.isnan(elue_score({"a": (80.0, 4.0), "b": (80.0, 4.0)}, {"a": CURVE}, ["a", "b"])[0])
    with pytest.raises(ValueError, match="speed-up"):
        reference_at(CURVE, 0.0)


def test_published_bert_3l_gap_to_elasticbert_3l_is_not_the_published_elue_score():
    """BERT-3L and ElasticBERT-3L have the same cost (4.0x); the mean of BERT-3L's six gaps is -5.47,
    the published ELUE column says -3.70 (docs/deviations.md)."""
    published = load_published()
    curve = {task: [CurvePoint(n, s, x) for n, s, x in points] for task, points in elasticbert_curve(published).items()}
    assert sorted(curve) == sorted(["SST-2", "IMDb", "SNLI", "SciTail", "MRPC", "STS-B"])
    rows = published[(published["table"] == "elue_main") & (published["row"] == "BERT-3L")]
    cells = {r.task: (r.value, r.speedup) for r in rows.itertuples() if r.metric == "score"}
    score, extrapolated = elue_score(cells, curve, list(curve))
    assert extrapolated == [] and round(score, 2) == -5.47
    assert float(rows.loc[rows["task"] == "ELUE", "value"].iloc[0]) == -3.70
    # ElasticBERT-3L against its own points: 0.00, as published
    own = published[(published["table"] == "elue_main") & (published["row"] == "ElasticBERT-3L") & (published["metric"] == "score")]
    assert elue_score({r.task: (r.value, r.speedup) for r in own.itertuples()}, curve, list(curve))[0] == 0.0
