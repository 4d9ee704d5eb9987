"""The inference-time comparison: the timing library on tiny models (earlyexit/cost/timing.py) and the
figure from a hand-made timing file (analysis/inference_time.py)."""

import copy

import numpy as np
import pytest
import torch

from analysis.inference_time import plot_inference_time, read_timing, timing_points
from earlyexit.data.encoded import EncodedSplit
from earlyexit.cost.flops import ModelDims, full_flops
from earlyexit.methods._token_exit import TokenExitModel
from earlyexit.methods.cascadebert import CascadeModel, cascade_cost
from earlyexit.models.cascade import CascadeClassifier, confidence, truncated_copy
from earlyexit.models.multi_exit import pad_batch
from tests.test_cascadebert import real_cascade
from earlyexit.models.hashee import HashEEForSequenceClassification
from earlyexit.plumbing.files import atomic_write_json
from earlyexit.cost.timing import InferenceRunner, TimingCase, time_inference, time_passes
from tests.conftest import tiny_classifier

CPU = torch.device("cpu")


def test_time_passes_runs_warmup_then_timed_passes():
    calls = []
    seconds, last = time_passes(lambda: calls.append(len(calls)) or len(calls), warmup=2, repeats=3, device=CPU)
    assert len(calls) == 5 and last == 5
    assert len(seconds) == 3 and all(s > 0 for s in seconds)
    with pytest.raises(ValueError, match="repeats >= 1"):
        time_passes(lambda: None, warmup=0, repeats=0, device=CPU)


def test_time_passes_synchronises_cuda_before_each_clock_reading(monkeypatch):
    events = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
    time_passes(lambda: events.append("pass"), warmup=1, repeats=2, device=torch.device("cuda"))
    assert events == ["pass", "sync", "pass", "sync", "pass", "sync"]
    events.clear()
    time_passes(lambda: events.append("pass"), warmup=1, repeats=2, device=CPU)
    assert events == ["pass"] * 3                 # no CUDA call on the CPU path


@pytest.fixture
def split():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 20, 40)
    return EncodedSplit(input_ids=[np.concatenate([[2], rng.integers(5, 120, n - 1)]) for n in lengths],
                        token_type_ids=[np.zeros(n, dtype=np.int64) for n in lengths],
                        labels=rng.integers(0, 3, 40))


def test_time_inference_gives_positive_medians_speedups_of_the_timed_pass_and_a_valid_record(split, tmp_path):
    big = tiny_classifier(num_layers=4, num_labels=3, seed=2)
    full = InferenceRunner(TokenExitModel(HashEEForSequenceClassification(copy.deepcopy(big)), None, seed=1), 0, CPU)
    cascade = CascadeClassifier(truncated_copy(big, 2, seed=3), copy.deepcopy(big)).eval()
    cases = [TimingCase("full", "default", "Full (no exit)", "static", None, None, full, reference=True),
             TimingCase("cascadebert", "default", "CascadeBERT", "dynamic", {"threshold": 1.0}, "hand-made",
                        InferenceRunner(CascadeModel(cascade, 1.0), 0, CPU)),
             TimingCase("cascadebert", "half", "CascadeBERT", "dynamic", {"threshold": 0.0}, "hand-made",
                        InferenceRunner(CascadeModel(cascade, 0.0), 0, CPU))]
    dims = ModelDims.from_hf_config(big.config)
    result = time_inference(cases, split, batch_sizes=[1, 8], warmup=1, repeats=2, device=CPU, dims=dims,
                            reference_layers=12)
    assert result["threads"] == torch.get_num_threads() == 1 and result["device_type"] == "cpu"
    full_entry, never, always = result["entries"]
    for entry in result["entries"]:
        assert [t["batch_size"] for t in entry["timings"]] == [1, 8]
        assert all(t["median_seconds"] > 0 and len(t["seconds"]) == 2 for t in entry["timings"])
    assert full_entry["flops_speedup_vs_own_full"] == pytest.approx(1.0)
    assert all(t["wall_speedup"] == 1.0 for t in full_entry["timings"])
    # theta 1: both models on every instance; theta 0: the 2-layer small model alone
    lengths = split.lengths
    big_total = sum(full_flops(n, dims) for n in lengths)
    small_total = sum(full_flops(n, ModelDims.from_hf_config(cascade.small.config)) for n in lengths)
    assert never["flops_speedup_vs_own_full"] == pytest.approx(big_total / (big_total + small_total))
    assert always["flops_speedup_vs_own_full"] == pytest.approx(big_total / small_total)
    assert never["mean_layers"] == 6 and always["mean_layers"] == 2
    reference_total = sum(full_flops(n, ModelDims(32, 4, 64, 12, 3)) for n in lengths)     # 12 layers, same width
    assert never["flops_speedup"] == pytest.approx(reference_total / (big_total + small_total))
    for entry in (never, always):
        for timed in entry["timings"]:
            full_median = next(t for t in full_entry["timings"] if t["batch_size"] == timed["batch_size"])["median_seconds"]
            assert timed["wall_speedup"] == pytest.approx(full_median / timed["median_seconds"])
    path = tmp_path / "timing.json"
    atomic_write_json(path, {"preset": "t", "task": "x", "backbone": "tiny", "seed": 1, **result, "skipped": []})
    assert read_timing(path)["entries"][1]["setting"] == {"threshold": 1.0}       # passes the schema


def test_cascade_runner_answers_as_the_sweep_scores_and_costs_what_it_ran(split):
    big = tiny_classifier(num_layers=4, num_labels=3, seed=4)
    cascade = CascadeClassifier(truncated_copy(big, 2, seed=5), big).eval()
    ids, types, mask, _ = pad_batch(split, np.arange(len(split)), 0)
    with torch.no_grad():
        threshold = float(confidence(cascade.small(input_ids=ids, token_type_ids=types, attention_mask=mask).logits).median())
    runner = InferenceRunner(CascadeModel(cascade, threshold), 0, CPU)
    batches = runner.batches(split, 8)
    with torch.inference_mode():
        outputs = [runner.run(b) for b in batches]
    predictions = np.zeros(len(split), dtype=np.int64)
    for batch, (answer, _) in zip(batches, outputs):
        predictions[batch.indices] = answer
    expected, escalated = real_cascade(cascade, split, threshold, 8)
    assert 0 < escalated.sum() < len(split)
    assert (predictions == expected).all()
    cost = runner.cost(split, batches, outputs)
    want = cascade_cost(split.lengths, escalated, ModelDims.from_hf_config(cascade.small.config),
                        ModelDims.from_hf_config(big.config))
    assert cost.method_flops.tolist() == pytest.approx(want.method_flops.tolist())


def test_token_exit_runner_is_the_full_model(split):
    model = tiny_classifier(num_layers=3, num_labels=3, seed=6)
    runner = InferenceRunner(TokenExitModel(HashEEForSequenceClassification(model), None, seed=1), 0, CPU)
    batches = runner.batches(split, 16)
    with torch.inference_mode():
        answers = [runner.run(b)[0] for b in batches]
        for batch, answer in zip(batches, answers):
            plain = model(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids,
                          attention_mask=(batch.input_ids != 0).long()).logits.argmax(-1)
            assert (answer == plain.numpy()).all()
    assert runner.cost(split, batches, None).elue_depth.tolist() == [3.0] * len(split)
    assert split.exit_layers is None          # the runner attached its exits to a copy


def hand_made_timing(task, backbone, entries, device="cpu (x86_64)", threads=1):
    return {"preset": "t", "task": task, "backbone": backbone, "seed": 1, "split": "test", "instances": 200,
            "batch_sizes": [1, 32], "warmup": 1, "repeats": 3, "statistic": "median", "timing_scope": "hand-made",
            "device": device, "device_type": "cpu", "threads": threads, "torch": "2", "skipped": [],
            "entries": [{"method": m, "variant": v, "label": m, "family": f, "reference": m == "full", "setting": None,
                         "setting_source": None, "flops_speedup_vs_own_full": x, "flops_speedup": 2 * x,
                         "mean_layers": 6 / x,
                         "timings": [{"batch_size": b, "seconds": [s], "median_seconds": s, "wall_speedup": w}
                                     for b, s, w in timings]}
                        for m, v, f, x, timings in entries]}


def test_figure_renders_from_a_hand_made_timing_file(tmp_path):
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    atomic_write_json(a, hand_made_timing("synth-sentiment", "tiny-6L", [
        ("full", "default", "static", 1.0, [(1, 2.0, 1.0), (32, 0.5, 1.0)]),
        ("hashee", "frequency", "token-level", 1.8, [(1, 1.6, 1.25), (32, 0.3, 1.67)]),
        ("cascadebert", "default", "dynamic", 2.5, [(1, 1.0, 2.0), (32, 0.25, 2.0)])]))
    record = read_timing(a)
    record["plain_hf"] = {"label": "plain HF", "timings": [{"batch_size": 1, "seconds": [4.0], "median_seconds": 4.0,
                                                             "wall_speedup": 0.5}]}
    atomic_write_json(a, record)
    atomic_write_json(b, hand_made_timing("synth-nli", "tiny-6L", [
        ("full", "default", "static", 1.0, [(1, 3.0, 1.0), (32, 0.6, 1.0)]),
        ("pabee", "default", "dynamic", 1.5, [(1, 2.5, 1.2), (32, 0.5, 1.2)])]))
    png, pdf = tmp_path / "f.png", tmp_path / "f.pdf"
    points = plot_inference_time([a, b], png, pdf, preset="t")
    assert png.stat().st_size > 1000 and pdf.read_bytes().startswith(b"%PDF")
    assert len(points) == 10 and set(points["batch_size"]) == {1, 32}
    row = points[(points.method == "cascadebert") & (points.batch_size == 32)].iloc[0]
    assert (row.flops_speedup, row.wall_speedup) == (2.5, 2.0)
    from analysis.inference_time import plain_points

    assert plain_points([read_timing(a), read_timing(b)]).to_dict("records") == [
        {"task": "synth-sentiment", "backbone": "tiny-6L", "batch_size": 1, "wall_speedup": 0.5}]


def test_a_bad_timing_file_is_named_with_the_field():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        bad = hand_made_timing("x", "y", [("full", "default", "static", 1.0, [(1, 2.0, 1.0)])])
        bad["entries"][0]["timings"][0]["median_seconds"] = 0
        path = Path(tmp) / "bad.json"
        atomic_write_json(path, bad)
        with pytest.raises(ValueError, match=r"bad\.json: entries\.0\.timings\.0\.median_seconds"):
            read_timing(path)
        assert timing_points([]).empty


def test_run_timing_times_saved_runs_at_the_sweep_matched_point(tmp_path, monkeypatch):
    """End to end on the contract's tiny runs: the full model, HashEE (frequency hash) and every
    dynamic method of the registry at the setting its curve's matched file names (learned exits
    read their trained modules); the record passes the schema. Every timed pass goes through the one
    runner and the backbone's fast linears (a method whose timing bypasses either fails here)."""
    from earlyexit.dynamic.settings import method_settings, section
    from earlyexit.runs.experiment import run_experiment
    from earlyexit.dynamic.matching import match_file, read_matched
    from earlyexit.dynamic.sweeps import run_sweep
    from earlyexit.cost.timing import run_timing
    from tests.conftest import tokenized_synth_nli
    from tests.test_methods_contract import BACKBONE, ONE_STEP, make_artifacts

    tokenized = tokenized_synth_nli(tmp_path, train_size=16)
    from earlyexit.methods import METHODS, get_method

    # every method's schema-filled section, as the workflow passes config["dynamic"]
    settings = {name: method_settings(section(), name) for name in METHODS}
    settings["cascadebert"]["label_seeds"] = 1

    dynamic = [(name, "default") for name, m in METHODS.items() if m.family == "dynamic"]
    cases = []
    for method, variant in (("full", "default"), ("hashee", "frequency"), *dynamic):
        artifacts = make_artifacts(tmp_path, get_method(method).artifacts(variant, 1))
        ckpt = tmp_path / f"{method}-{variant}.pt"
        run_experiment(preset="t", task_name="synth-nli", tokenized=tmp_path / "tok.npz", tokenized_meta=tmp_path / "tok.json",
                       backbone=BACKBONE, method=method, variant=variant, artifacts=artifacts, train_config=ONE_STEP,
                       seed=1, reference_layers=12, out_json=tmp_path / f"{method}-{variant}.json", checkpoint=ckpt,
                       device="cpu", progress=False, method_settings=settings.get(method))
        case = {"method": method, "variant": variant, "checkpoint": str(ckpt), "artifacts": artifacts, "matched": None}
        if (method, variant) in dynamic:
            sweep = str(tmp_path / f"sweep-{method}.json")
            run_sweep(preset="t", task_name="synth-nli", tokenized=tmp_path / "tok.npz", tokenized_meta=tmp_path / "tok.json",
                      backbone=BACKBONE, method=method, variant=variant, seed=1, checkpoint=ckpt, train_config=ONE_STEP,
                      reference_layers=12, out_json=sweep, device="cpu", method_settings=settings.get(method))
            case["matched"] = str(tmp_path / f"matched-{method}.json")
            match_file(sweep_paths=[sweep], published=None, default_target=3.0, out_json=case["matched"])
        cases.append(case)
    from earlyexit.cost.inference import PlainHF
    from earlyexit.models.fast_linear import FastLinear, uses_fast_linears
    from earlyexit.cost.timing import InferenceRunner

    linear_calls, runs = [0], []
    fast_forward, one_run = FastLinear.forward, InferenceRunner.run

    def counted_forward(self, *args, **kwargs):
        linear_calls[0] += 1
        return fast_forward(self, *args, **kwargs)

    def watched_run(self, batch):
        before = linear_calls[0]
        result = one_run(self, batch)
        runs.append((type(self.timed), uses_fast_linears(self.model), linear_calls[0] > before))
        return result

    monkeypatch.setattr(FastLinear, "forward", counted_forward)
    monkeypatch.setattr(InferenceRunner, "run", watched_run)
    out = tmp_path / "timing.json"
    record = run_timing(preset="t", task_name="synth-nli", tokenized=tmp_path / "tok.npz", tokenized_meta=tmp_path / "tok.json",
                        backbone=BACKBONE, seed=1, cases=cases, train_config=ONE_STEP, method_settings=settings,
                        reference_layers=12, batch_sizes=[1, 4], warmup=0, repeats=1, out_json=out, device="cpu")
    assert read_timing(out) == record and record["skipped"] == [] and record["threads"] == 1
    # every case and the plain HF reference ran through the one runner, each batch through fast linears
    assert {kind for kind, _, _ in runs} >= {PlainHF} and len({kind for kind, _, _ in runs}) == 4
    assert all(carried and used for kind, carried, used in runs if kind is not PlainHF)
    assert [t["batch_size"] for t in record["plain_hf"]["timings"]] == [1, 4] and record["dtype"] == "float32"
    assert [(e["method"], e["variant"]) for e in record["entries"]] == [
        ("full", "default"), ("hashee", "frequency"), *dynamic]
    from earlyexit.dynamic.sweeps import read_sweep

    sweep = read_sweep(tmp_path / "sweep-cascadebert.json")
    chosen = read_matched(tmp_path / "matched-cascadebert.json")["seeds"][0]["matched"]
    cascade = record["entries"][2 + dynamic.index(("cascadebert", "default"))]
    assert cascade["setting"] == chosen["setting"] and "matched point" in cascade["setting_source"]
    matched = sweep["points"][chosen["index"]]
    # the timed pass ran what the sweep scored at that setting: the same FLOPs on the test split
    assert cascade["flops_speedup_vs_own_full"] == pytest.approx(matched["test_speedup"]["flops_vs_own_full"])
    hashee = record["entries"][1]
    assert hashee["flops_speedup_vs_own_full"] > 1.0 and record["entries"][0]["flops_speedup_vs_own_full"] == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["berxit", "consistentee"])
def test_learned_exit_rules_are_timed_at_the_sweep_matched_point(method, tmp_path):
    """BERxiT's exit module and ConsistentEE's policies are read from the trained model
    (model_rule): the timed pass runs what the sweep scored, the same FLOPs on the test split.
    ConsistentEE's curve has two training-time runs (alpha 0 and 0.09): the matched run's weights are timed."""
    from earlyexit.dynamic.settings import method_settings, section
    from earlyexit.runs.experiment import run_experiment
    from earlyexit.dynamic.matching import match_file
    from earlyexit.methods import get_method, training_runs
    from earlyexit.dynamic.sweeps import read_sweep, run_sweep
    from earlyexit.cost.timing import run_timing
    from tests.conftest import tokenized_synth_nli
    from tests.test_methods_contract import BACKBONE, ONE_STEP

    tokenized_synth_nli(tmp_path, train_size=16)
    inputs = {"tokenized": tmp_path / "tok.npz", "tokenized_meta": tmp_path / "tok.json"}
    settings = {method: method_settings(section(), method)}
    if method == "consistentee":
        settings[method].update(copies=2, rl_batch_size=4, rl_epochs=1, rl_max_batches=1, joint_max_batches=1)
        settings[method]["alpha_grid"] = [0.0, 0.09]
    checkpoints, sweeps = {}, {}
    for run, train_setting in training_runs(get_method(method), "default", settings[method]):
        checkpoints[run], sweeps[run] = str(tmp_path / f"{run}.pt"), str(tmp_path / f"sweep-{run}.json")
        run_experiment(preset="t", task_name="synth-nli", **inputs, backbone=BACKBONE, method=method, variant="default",
                       artifacts={}, train_config=ONE_STEP, seed=1, reference_layers=12, out_json=tmp_path / f"{run}.json",
                       checkpoint=checkpoints[run], device="cpu", progress=False, method_settings=settings[method],
                       train_setting=train_setting)
        run_sweep(preset="t", task_name="synth-nli", **inputs, backbone=BACKBONE, method=method, variant="default", seed=1,
                  checkpoint=checkpoints[run], train_config=ONE_STEP, reference_layers=12, out_json=sweeps[run],
                  device="cpu", method_settings=settings[method], train_setting=train_setting)
    assert len(checkpoints) == (2 if method == "consistentee" else 1)
    matched_path = tmp_path / "matched.json"
    # a target no point reaches exactly; which run wins is the matching's business, timing follows it
    chosen = match_file(sweep_paths=list(sweeps.values()), published=None, default_target=1.01,
                        out_json=matched_path)["seeds"][0]["matched"]
    full = tmp_path / "full.pt"
    run_experiment(preset="t", task_name="synth-nli", **inputs, backbone=BACKBONE, method="full", variant="default",
                   artifacts={}, train_config=ONE_STEP, seed=1, reference_layers=12, out_json=tmp_path / "full.json",
                   checkpoint=full, device="cpu", progress=False, method_settings={})
    cases = [{"method": "full", "variant": "default", "checkpoint": str(full), "artifacts": {}, "matched": None},
             {"method": method, "variant": "default", "checkpoints": checkpoints, "artifacts": {},
              "matched": str(matched_path)}]
    record = run_timing(preset="t", task_name="synth-nli", **inputs, backbone=BACKBONE, seed=1, cases=cases,
                        train_config=ONE_STEP, method_settings=settings, reference_layers=12, batch_sizes=[1, 4],
                        warmup=0, repeats=1, out_json=tmp_path / "timing.json", device="cpu")
    _, entry = record["entries"]
    swept = read_sweep(sweeps[chosen["run"]])
    assert entry["setting"] == chosen["setting"] and f"of run {chosen['run']}" in entry["setting_source"]
    matched = swept["points"][chosen["index"]]
    assert entry["flops_speedup_vs_own_full"] == pytest.approx(matched["test_speedup"]["flops_vs_own_full"])


def test_legend_names_a_variant_once():
    from collections import namedtuple

    from analysis.inference_time import legend_label

    Row = namedtuple("Row", "method variant label")
    assert legend_label(Row("hashee", "mi", "MI")) == "HashEE (MI)"
    assert legend_label(Row("consistentee", "default", "ConsistentEE")) == "ConsistentEE"
    assert legend_label(Row("pabee", "default", "PABEE")) == "PABEE"


def test_every_timed_pass_runs_inside_the_timed_models_inference_session(split):
    """The runner enters the method's session once around all of a case's passes, warm-up included
    (what a method builds per batch is built once per session: earlyexit/models/inference_session.py)."""
    import contextlib

    from earlyexit.cost.timing import time_case
    from earlyexit.dynamic.exit_rules import NeverExit
    from earlyexit.methods._dynamic import EarlyExitModel
    from earlyexit.models.multi_exit import MultiExitClassifier

    timed = EarlyExitModel(MultiExitClassifier(tiny_classifier(num_layers=3, num_labels=3), "own-pooler"), NeverExit)
    model, events = timed.model, []
    real_session, real_forward = model.inference_session, timed.forward

    @contextlib.contextmanager
    def recorded():
        with real_session():
            events.append("enter")
            yield
            events.append("leave")

    model.inference_session = recorded
    timed.forward = lambda batch: events.append("inside" if model.__dict__.get("_inference_session") is not None
                                                else "outside") or real_forward(batch)
    case = TimingCase("deebert", "default", "DeeBERT", "dynamic", None, None, InferenceRunner(timed, 0, CPU))
    time_case(case, split, 8, warmup=1, repeats=2, device=CPU)
    batches = -(-len(split) // 8)
    assert events == ["enter", *["inside"] * (3 * batches), "leave"]
