"""The claims ledger (analysis/claims.py, analysis/bootstrap.py): resampled scores equal the task
metrics, curve interpolation, determinism, and each verdict on small hand-made record frames.
The methods are a stand-in registry, so the tests fix the roles (subject, reference, dynamic,
paper_rival) without depending on which real methods play them."""

import numpy as np
import pandas as pd
import pytest

from analysis.bootstrap import Outcome, Quantity, Resampler, difference, estimate
from analysis.claims import (CLAIMS, FAILS, HOLDS, INCONCLUSIVE, NOT_RUN, Curve, Inputs, MissingOutcomes, Thresholds,
                             claims_frame, interpolation_terms)
from earlyexit.methods.base import Method
from earlyexit.runs.metrics import compute_metrics
from tests.conftest import REPO
from tests.test_workflow import dry_run_outputs

N = 400
FAST = Thresholds(resamples=300)


class Fake(Method):
    order, color = 0, "k"

    def __init__(self, name, family, **declared):
        self.name, self.paper_name, self.family = name, name.upper(), family
        for key, value in declared.items():
            setattr(self, key, value)


REGISTRY = {m.name: m for m in (
    Fake("ref", "static", reference=True),
    Fake("tok", "token-level", paper_subject=True, variants=("freq", "rand"), speed_variant="freq",
         table_variants={"elue_main": ("freq",)}),
    Fake("dyn", "dynamic"),
    Fake("plain", "dynamic"),
    Fake("policy", "dynamic", paper_rival="plain"),
)}

LABELS = np.random.default_rng(0).integers(0, 2, N)


def outcome(accuracy: float, seed: int = 0, name: str = "") -> Outcome:
    """Binary predictions with exactly `accuracy` percent right, wrong ones at random positions."""
    wrong = np.random.default_rng(seed).permutation(N)[: round(N * (1 - accuracy / 100))]
    predictions = LABELS.copy()
    predictions[wrong] = 1 - predictions[wrong]
    return Outcome("accuracy", predictions, LABELS, name or f"acc{accuracy}-{seed}")


class Store:
    """In-memory outcome(path, setting) with the runs / curves frames that point to it. Every outcome's
    wrong instances are a prefix of one fixed order, so a lower score is wrong on a superset of
    instances: the paired difference is tight and the designed verdicts are sure."""

    def __init__(self):
        self.outcomes, self.runs, self.curves = {}, [], []

    def __call__(self, path, setting):
        return self.outcomes[(path, setting)]

    def run(self, method, variant, seed, accuracy, speedup, family="static", task="t", backbone="b"):
        path = f"runs/{task}/{backbone}/{method}/{variant}/{seed}"
        self.outcomes[(path, None)] = outcome(accuracy, 0, path)
        self.runs.append(dict(task=task, backbone=backbone, method=method, variant=variant, seed=seed, family=family,
                              flops_speedup=speedup, test_score=accuracy, path=path))

    def curve(self, method, seed, points, task="t", backbone="b"):
        """points: (speed-up, test accuracy)."""
        path = f"sweeps/{task}/{backbone}/{method}/{seed}"
        for i, (speedup, accuracy) in enumerate(points):
            self.outcomes[(path, f"p={i}")] = outcome(accuracy, 0, path)
            self.curves.append(dict(task=task, backbone=backbone, method=method, variant="default", seed=seed,
                                    setting=f"p={i}", dev_score=accuracy, flops_speedup=speedup, test_score=accuracy,
                                    path=path))

    def inputs(self, **extra) -> Inputs:
        columns = ["task", "backbone", "method", "variant", "seed", "family", "flops_speedup", "test_score", "path"]
        return Inputs(runs=pd.DataFrame(self.runs, columns=columns), curves=pd.DataFrame(
            self.curves, columns=[*columns[:5], "setting", "dev_score", "flops_speedup", "test_score", "path"]),
            outcome=self, **extra)


def verdicts(inputs, thresholds=FAST) -> dict:
    frame = claims_frame(inputs, thresholds, REGISTRY)
    assert list(frame["claim"]) == [c.key for c in CLAIMS]
    return dict(zip(frame["claim"], frame["verdict"]))


# --- statistics ------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["accuracy", "acc_and_f1", "pearson_spearman"])
def test_resampled_scores_are_the_task_metric_on_the_resample(metric):
    rng = np.random.default_rng(3)
    if metric == "pearson_spearman":
        labels = rng.uniform(0, 5, 60).round(1)
        predictions = labels + rng.normal(0, 1, 60)
    else:
        labels, predictions = rng.integers(0, 2, 60), rng.integers(0, 2, 60)
    result = Outcome(metric, predictions, labels)
    index = rng.integers(0, 60, size=(4, 60))
    expected = [compute_metrics(metric, predictions[i], labels[i])["score"] for i in index]
    assert result.scores(index) == pytest.approx(expected)
    assert result.score() == pytest.approx(compute_metrics(metric, predictions, labels)["score"])


def test_interpolation_mixes_the_two_neighbours_by_distance_in_speedup():
    a, b, c = outcome(70), outcome(80), outcome(90)
    assert interpolation_terms([1.0, 2.0, 4.0], [a, b, c], 3.0) == [(0.5, b), (0.5, c)]
    assert interpolation_terms([1.0, 2.0, 4.0], [a, b, c], 1.5) == [(0.5, a), (0.5, b)]
    terms = interpolation_terms([1.0, 2.0, 4.0], [a, b, c], 2.5)
    assert [w for w, _ in terms] == pytest.approx([0.75, 0.25]) and [o for _, o in terms] == [b, c]
    assert interpolation_terms([1.0, 2.0, 4.0], [a, b, c], 2.0) == [(1.0, b)]
    assert interpolation_terms([1.0, 2.0, 4.0], [a, b, c], 4.5) is None
    assert interpolation_terms([1.0, 2.0, 4.0], [a, b, c], 0.9) is None
    # equal speed-ups keep the better dev score; the interpolated score is linear in speed-up
    curve = Curve.of([(2.0, 60.0, a), (1.0, 0.0, c), (2.0, 75.0, b)])
    assert list(curve.speedups) == [1.0, 2.0] and curve.outcomes == [c, b]
    assert Quantity.of({1: curve.at(1.25)}).value() == pytest.approx(0.75 * 90 + 0.25 * 80)


def test_bootstrap_of_a_mix_resamples_instances_jointly():
    a, b = outcome(70, 1), outcome(90, 2)
    resampler = Resampler(N, 200, seed=5, key="mix")
    mixed = Quantity.of({1: [(0.25, a), (0.75, b)]}).samples(resampler)
    correct = 0.25 * (a.predictions == LABELS) + 0.75 * (b.predictions == LABELS)
    index = np.random.default_rng(resampler.seed).integers(0, N, size=(200, N))
    assert mixed == pytest.approx(100 * correct[index].mean(axis=1))   # the per-instance mix, same draws


def test_identical_methods_give_zero_and_a_large_margin_is_decided():
    same = outcome(80)
    zero = estimate(difference(Quantity.of({1: [(1.0, same)]}), Quantity.of({1: [(1.0, same)]})),
                    confidence=0.95, resamples=300, seed=0, key="k")
    assert (zero.value, zero.low, zero.high) == (0.0, 0.0, 0.0)
    big = estimate(difference(Quantity.of({1: [(1.0, outcome(95))]}), Quantity.of({1: [(1.0, outcome(70))]})),
                   confidence=0.95, resamples=300, seed=0, key="k")
    assert big.value == pytest.approx(25.0) and 20 < big.low < 25 < big.high < 30
    assert "paired bootstrap over 400 test instances" in big.test


def test_estimates_are_deterministic_under_a_seed():
    q = difference(Quantity.of({1: [(1.0, outcome(82, 1))]}), Quantity.of({1: [(1.0, outcome(80, 2))]}))
    once = estimate(q, confidence=0.9, resamples=300, seed=4, key="k")
    assert estimate(q, confidence=0.9, resamples=300, seed=4, key="k") == once
    assert estimate(q, confidence=0.9, resamples=300, seed=5, key="k") != once


def test_three_seeds_use_a_t_test_across_seeds():
    q = difference(Quantity.of({s: [(1.0, outcome(80 + s, s))] for s in (1, 2, 3)}),
                   Quantity.of({s: [(1.0, outcome(80, 10 + s))] for s in (1, 2, 3)}))
    result = estimate(q, confidence=0.95, resamples=300, seed=0, key="k")
    assert result.test == "paired t-test across 3 seeds" and result.value == pytest.approx(2.0)
    assert result.low < 2.0 < result.high


def test_outcomes_of_other_instances_cannot_be_paired():
    other = Outcome("accuracy", LABELS[:-1], 1 - LABELS[:-1], "short")
    q = difference(Quantity.of({1: [(1.0, outcome(80))]}), Quantity.of({1: [(1.0, other)]}))
    with pytest.raises(ValueError, match="short: not the test instances"):
        estimate(q, confidence=0.95, resamples=100, seed=0, key="k")


# --- verdicts ------------------------------------------------------------------------------------

def test_nothing_run_is_not_run_for_every_claim():
    assert set(verdicts(Store().inputs()).values()) == {NOT_RUN}


def test_records_without_per_instance_outcomes_leave_their_claims_inconclusive():
    store = Store()
    store.run("ref", "default", 1, 85.0, 1.0)
    store.run("tok", "freq", 1, 85.0, 4.0, family="token-level")

    def old_records(path, setting):
        raise MissingOutcomes(f"{path}: no test_instances")

    inputs = store.inputs()
    inputs.outcome = old_records
    result = claims_frame(inputs, FAST, REGISTRY).set_index("claim")
    assert result.loc["c", "verdict"] == INCONCLUSIVE and "no test_instances" in result.loc["c", "numbers"]
    assert result.loc["g", "verdict"] == NOT_RUN


@pytest.mark.parametrize("subject_accuracy, expected", [(85.0, HOLDS), (70.0, FAILS), (84.0, INCONCLUSIVE)])
def test_keeps_the_full_models_score(subject_accuracy, expected):
    store = Store()
    for seed in (1, 2):
        store.run("ref", "default", seed, 85.0, 1.0)
        store.run("tok", "freq", seed, subject_accuracy, 4.0, family="token-level")
    assert verdicts(store.inputs())["c"] == expected


@pytest.mark.parametrize("freq_speedup, freq_accuracy, expected", [(4.0, 84.5, HOLDS), (2.0, 85.0, FAILS),
                                                                 (4.0, 70.0, FAILS), (4.0, 83.0, INCONCLUSIVE)])
def test_the_speed_variant_is_fastest_at_a_similar_score(freq_speedup, freq_accuracy, expected):
    store = Store()
    store.run("tok", "freq", 1, freq_accuracy, freq_speedup, family="token-level")
    store.run("tok", "rand", 1, 85.0, 3.0, family="token-level")
    assert verdicts(store.inputs())["d"] == expected


@pytest.mark.parametrize("curve_accuracy, expected", [(70.0, HOLDS), (85.0, INCONCLUSIVE), (98.0, FAILS)])
def test_beats_the_dynamic_curve_at_its_own_speedup(curve_accuracy, expected):
    store = Store()
    store.run("tok", "freq", 1, 85.0, 3.0, family="token-level")
    store.curve("dyn", 1, [(1.0, 99.0), (2.0, curve_accuracy), (4.0, curve_accuracy), (6.0, 50.0)])
    result = claims_frame(store.inputs(), FAST, REGISTRY).set_index("claim")
    assert result.loc["e-score", "verdict"] == expected and "at 3.00x" in result.loc["e-score", "numbers"]


def test_a_curve_that_does_not_reach_the_speedup_is_not_compared():
    store = Store()
    store.run("tok", "freq", 1, 85.0, 8.0, family="token-level")
    store.curve("dyn", 1, [(1.0, 90.0), (3.0, 60.0)])
    result = claims_frame(store.inputs(), FAST, REGISTRY).set_index("claim")
    assert result.loc["e-score", "verdict"] == INCONCLUSIVE and "does not reach" in result.loc["e-score", "numbers"]


@pytest.mark.parametrize("elastic_curve, expected", [(70.0, HOLDS), (80.0, INCONCLUSIVE), (95.0, FAILS)])
def test_the_advantage_over_dynamic_methods_grows_with_exit_pretraining(elastic_curve, expected):
    """(i): on the plain backbone the subject is 5 points above the curve at its speed-up (85 vs 80);
    on the one pre-trained with exits 15 above (holds), level (inconclusive) or 10 below (fails)."""
    store = Store()
    for backbone, curve_accuracy in (("plain", 80.0), ("elastic", elastic_curve)):
        store.run("tok", "freq", 1, 85.0, 3.0, family="token-level", backbone=backbone)
        store.curve("dyn", 1, [(1.0, 99.0), (2.0, curve_accuracy), (4.0, curve_accuracy)], backbone=backbone)
    result = claims_frame(store.inputs(pretrained_pairs={"elastic": "plain"}), FAST, REGISTRY).set_index("claim")
    assert result.loc["i", "verdict"] == expected
    assert f"advantage {85.0 - elastic_curve:+.1f} at 3.00x with exits vs +5.0 at 3.00x without" in result.loc["i", "numbers"]
    # without a pair, or with a dynamic method on one backbone only, nothing to compare
    assert verdicts(store.inputs())["i"] == NOT_RUN


def test_exit_pretraining_gain_needs_the_curve_on_both_backbones():
    store = Store()
    for backbone in ("plain", "elastic"):
        store.run("tok", "freq", 1, 85.0, 3.0, family="token-level", backbone=backbone)
    store.curve("dyn", 1, [(1.0, 99.0), (4.0, 80.0)], backbone="plain")
    store.curve("dyn", 1, [(1.0, 99.0), (2.0, 80.0)], backbone="elastic")     # does not reach 3x
    result = claims_frame(store.inputs(pretrained_pairs={"elastic": "plain"}), FAST, REGISTRY).set_index("claim")
    assert result.loc["i", "verdict"] == INCONCLUSIVE and "not compared" in result.loc["i", "numbers"]


@pytest.mark.parametrize("gap_low, gap_high, beats, grows", [(10.0, 20.0, HOLDS, HOLDS), (15.0, 15.0, HOLDS, INCONCLUSIVE),
                                                             (0.0, 0.0, INCONCLUSIVE, INCONCLUSIVE),
                                                             (-10.0, -20.0, FAILS, FAILS)])
def test_rival_comparison_over_the_overlap_of_both_curves(gap_low, gap_high, beats, grows):
    """The rival's curve falls from 80 to 60 over 1.5x..4x; the method's sits gap_low points above it at
    2x and gap_high at 3x (linear), compared over the overlap 2x..3x."""
    store = Store()
    store.curve("plain", 1, [(1.5, 80.0), (2.0, 75.0), (3.0, 65.0), (4.0, 60.0)])
    store.curve("policy", 1, [(2.0, 75.0 + gap_low), (3.0, 65.0 + gap_high)])
    result = claims_frame(store.inputs(), Thresholds(resamples=300, grid_points=3), REGISTRY).set_index("claim")
    assert (result.loc["g", "verdict"], result.loc["h", "verdict"]) == (beats, grows)
    assert "2.00-3.00x (3 points)" in result.loc["g", "numbers"]
    # the statement names the roles the registry declares: the method with a paper_rival, and the rival
    assert result.loc["g", "statement"] == "POLICY beats PLAIN at equal speed-up" and result.loc["g", "paper"] == "POLICY"


@pytest.mark.parametrize("accuracy, expected", [(52.0, HOLDS), (90.0, FAILS), (60.0, INCONCLUSIVE)])
def test_human_difficulty_is_barely_learnable(accuracy, expected):
    human = pd.DataFrame([{"predictor": "Majority", "seeds": 1, "test_accuracy_mean": 50.0, "chance": 50.0, "test_rows": 1000},
                          {"predictor": "BERT", "seeds": 1, "test_accuracy_mean": accuracy, "chance": 50.0, "test_rows": 1000}])
    assert verdicts(Store().inputs(difficulty_human=human))["a"] == expected


@pytest.mark.parametrize("seeds, f1, std, expected", [(3, 47.0, 0.5, HOLDS), (3, 70.0, 0.5, FAILS),
                                                      (3, 50.0, 3.0, INCONCLUSIVE), (1, 47.0, float("nan"), INCONCLUSIVE)])
def test_model_difficulty_does_not_beat_the_prior(seeds, f1, std, expected):
    model = pd.DataFrame([{"level": "sentence", "predictor": "Majority", "seeds": seeds, "f1_mean": 45.0, "f1_std": 0.0},
                          {"level": "sentence", "predictor": "BERT", "seeds": seeds, "f1_mean": f1, "f1_std": std}])
    assert verdicts(Store().inputs(difficulty_model=model))["b"] == expected


def timing_record(subject_seconds, rival_seconds):
    def entry(method, family, seconds):
        return {"method": method, "variant": "freq" if method == "tok" else "default", "label": method, "family": family,
                "flops_speedup": 3.0, "timings": [{"batch_size": 1, "seconds": seconds, "wall_speedup": 1 / np.median(seconds)}]}

    return {"task": "t", "backbone": "b", "entries": [entry("ref", "static", [1.0, 1.0]),
                                                      entry("tok", "token-level", subject_seconds),
                                                      entry("dyn", "dynamic", rival_seconds)]}


@pytest.mark.parametrize("ours, theirs, expected", [([0.2, 0.3], [0.5, 0.6], HOLDS), ([0.7, 0.8], [0.5, 0.6], FAILS),
                                                    ([0.4, 0.6], [0.5, 0.7], INCONCLUSIVE)])
def test_wall_clock_from_the_timing_records(ours, theirs, expected):
    assert verdicts(Store().inputs(timing=[timing_record(ours, theirs)]))["e-wall"] == expected


@pytest.mark.parametrize("enc, rouge, expected", [(2.0, 39.5, HOLDS), (1.0, 40.0, FAILS), (2.0, 30.0, FAILS)])
def test_generation_keeps_rouge_at_its_encoder_speedup(enc, rouge, expected):
    store = Store()
    rng = np.random.default_rng(1)
    rows = []
    for method, variant, mean, speed in (("ref", "default", 40.0, 1.0), ("tok", "freq", rouge, enc)):
        path = f"summaries/{method}"
        scores = np.clip(mean + rng.normal(0, 3, N), 0, 100)
        scores += mean - scores.mean()
        store.outcomes[(path, None)] = Outcome("rouge", scores, None, path)
        rows.append(dict(task="s", backbone="b", method=method, variant=variant, seed=1, metric="rouge",
                         test_score=mean, enc_speedup=speed, path=path))
    assert verdicts(store.inputs(summaries=pd.DataFrame(rows)))["f"] == expected


def test_the_demo_dag_renders_the_ledger_after_every_table_it_reads(tmp_path):
    outputs = dry_run_outputs(REPO / "config" / "presets" / "demo.yaml", tmp_path)
    assert {outputs[f"results/demo/tables/claims.{ext}"] for ext in ("csv", "md", "tex")} == {"table_claims"}
