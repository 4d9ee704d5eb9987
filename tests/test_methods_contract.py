"""The contract every method of the registry keeps: on a tiny model it trains one step, evaluates,
and writes a run record that passes the result schema with its FLOPs accounted. The test walks the
registry, so a new method module is covered without touching this file."""

import pytest

from analysis.collect import read_run
from earlyexit.runs.experiment import run_experiment
from earlyexit.hashing.artifacts import fit_hash_artifact
from earlyexit.runs.metrics import compute_metrics
from earlyexit.plumbing.files import read_json
from earlyexit.methods import METHODS, config_errors, get_method, method_variants
from earlyexit.methods.base import FAMILIES
from earlyexit.training.loop import TrainConfig
from tests.conftest import TINY_HASH_CONFIG, tiny_backbone, tokenized_synth_nli

BACKBONE = tiny_backbone()
ONE_STEP = TrainConfig(lr=1e-3, batch_size=16, epochs=1, eval_batch_size=16, warmup_ratio=0.0, weight_decay=0.0,
                       grad_clip=1.0, max_seq_len=32, track_best_on_test=True, optimizer="adamw",
                       evals_per_epoch=1, bf16=False, cpu_bf16=False)
# Every variant that can run on the tiny backbone offline (a truncation no deeper than it; methods that
# load their own hub checkpoint are run on a local stand-in in tests/test_static_methods.py). Decoder-LM
# generation methods (generation_lm) have their own contract in tests/test_llm_pipeline.py.
CASES = [(name, variant) for name, method in METHODS.items() for variant in method.variants
         if not method.needs_hub and not method.generation_lm and method.applies(variant, dict(BACKBONE.__dict__))]


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    """synth-nli (a sentence-pair task) with a 16-example training split: one batch, one step."""
    return tokenized_synth_nli(tmp_path_factory.mktemp("contract"), train_size=16)


def make_artifacts(root, declared: dict) -> dict:
    """Build each artifact a method declares; a kind unknown here fails loudly (add it here)."""
    paths = {}
    for name, spec in declared.items():
        if spec["kind"] == "checkpoint":
            # the selected weights of another method's run (one step, like every contract run)
            ckpt = root / f"checkpoints/{spec['method']}-{spec['variant']}-seed{spec['seed']}.pt"
            if not ckpt.exists():
                run_experiment(preset="contract", task_name="synth-nli", tokenized=root / "tok.npz",
                               tokenized_meta=root / "tok.json", backbone=BACKBONE, method=spec["method"],
                               variant=spec["variant"],
                               artifacts=make_artifacts(root, get_method(spec["method"]).artifacts(spec["variant"], spec["seed"])),
                               train_config=ONE_STEP, seed=spec["seed"], reference_layers=12,
                               out_json=ckpt.with_suffix(".json"), checkpoint=ckpt, device="cpu", progress=False)
            paths[name] = str(ckpt)
            continue
        assert spec["kind"] == "hash", f"the contract test cannot build artifacts of kind {spec['kind']!r}"
        out = root / f"{spec['hash']}-{spec['fit']}"
        fit_hash_artifact(tokenized=root / "tok.npz", meta=read_json(root / "tok.json"), backbone=BACKBONE,
                          hash_name=spec["hash"], hash_config=TINY_HASH_CONFIG, seed=1,
                          out_npz=f"{out}.npz", out_summary=f"{out}.json")
        paths[name] = f"{out}.npz"
    return paths


@pytest.mark.parametrize("method, variant", CASES, ids=[f"{m}-{v}" for m, v in CASES])
def test_every_method_trains_evaluates_and_writes_a_valid_record(tokenized, method, variant):
    out = tokenized / f"runs/{method}/{variant}.json"
    record = run_experiment(preset="contract", task_name="synth-nli", tokenized=tokenized / "tok.npz",
                            tokenized_meta=tokenized / "tok.json", backbone=BACKBONE, method=method,
                            variant=variant, artifacts=make_artifacts(tokenized, get_method(method).artifacts(variant, 1)),
                            train_config=ONE_STEP, seed=1, reference_layers=12, out_json=out, device="cpu",
                            progress=False)
    row = read_run(out)    # raises unless the record passes workflow/schemas/result.schema.yaml
    assert (row["method"], row["variant"], row["family"]) == (method, variant, get_method(method).family)
    assert record["history"] and record["history"][-1]["step"] == 1          # one step, then evaluated
    assert 0.0 <= record["test"]["score"] <= 100.0
    # every method keeps each test instance's prediction: they give back the recorded test score
    instances = record["test_instances"]
    assert instances["kind"] == "label" and len(instances["predictions"]) == record["data"]["counts"]["test"]
    assert compute_metrics("accuracy", instances["predictions"], instances["labels"])["score"] == pytest.approx(
        record["test"]["score"])
    flops = record["flops"]
    assert 0 < flops["method_per_instance"] <= flops["full_per_instance"] < flops["reference_per_instance"]
    speed = record["speedup"]
    # 2 of the reference's 12 layers: the full model is already 6x, and no run is slower than that.
    assert speed["flops"] == pytest.approx(flops["reference_per_instance"] / flops["method_per_instance"])
    assert speed["flops"] >= speed["flops_vs_own_full"] * 5.9 and speed["flops_vs_own_full"] >= 1.0
    if get_method(method).reference:
        assert speed["flops_vs_own_full"] == pytest.approx(1.0)


def test_registry_declares_what_rules_and_tables_read():
    assert {"full", "hashee"} <= set(METHODS)
    orders = [m.order for m in METHODS.values()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    for method in METHODS.values():
        assert method.family in FAMILIES and method.paper_name and method.color
        assert all(method.label(v) for v in method.variants)
    assert [m for m in METHODS.values() if m.reference] == [METHODS["full"]]
    colors = [m.color for m in METHODS.values()]
    assert len(set(colors)) == len(colors), "two methods share a colour in the figures"
    assert METHODS["hashee"].label("mi") == "MI" and METHODS["full"].label("default") == "Full (no exit)"


def test_config_methods_are_checked_against_the_registry():
    assert method_variants({"hashee": ["mi"], "full": None}) == [("full", "default"), ("hashee", "mi")]
    assert len(method_variants({"hashee": None})) == len(METHODS["hashee"].variants)
    assert config_errors({"no-such-method": None}) == [
        f"config key 'methods.no-such-method': unknown method (known: {', '.join(METHODS)})"]
    assert config_errors({"hashee": ["md5"]})[0].startswith("config key 'methods.hashee': unknown variant 'md5'")


def test_every_timed_method_declares_its_runner_and_builder():
    """The interface is declared on base.Method: the timing asks each method for its timed model, the sweep
    and the timing rebuild saved weights through `build`/`load` (no duck typing)."""
    from earlyexit.methods import METHODS, Method

    timed = [m for m in METHODS.values() if not m.generation_lm and (m.reference or m.family in ("token-level", "dynamic"))]
    assert timed and all(m.timed for m in timed)
    for method in timed:
        assert type(method).timed_model is not Method.timed_model, method.name
        assert type(method).build is not Method.build, method.name
    dynamic = [m for m in timed if m.family == "dynamic"]
    assert all(type(m).score_sweep is not Method.score_sweep for m in dynamic)
