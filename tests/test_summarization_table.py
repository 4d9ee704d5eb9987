"""The summarization table: row names from the registry and the backbone, published numbers beside
real tasks only, the lead-1 baseline row, all three formats written."""

import json

import pandas as pd
import pytest

from analysis.published import load_published
from analysis.summarization import LEAD, write_summarization


def record(tmp_path, task, paper_task, synthetic, backbone, method, variant, seed, rouge1, enc=1.0):
    scores = {"rouge1": rouge1, "rouge2": rouge1 / 2, "rougeL": rouge1 - 1, "score": rouge1, "rougeL_variant": "rougeLsum"}
    data = {"preset": "t", "task": task, "paper_task": paper_task, "synthetic": synthetic, "backbone": backbone.lower(),
            "paper_backbone": backbone, "num_layers": 2, "method": method, "variant": variant, "label": method,
            "family": "static", "seed": seed, "metric": "rouge", "dev": scores, "test": scores, "mean_exit_layer": 2.0,
            "speedup": {"convention": "x", "reference_layers": 2, "reference_decoder_layers": 2, "flops": 1.0,
                        "flops_vs_own_full": 1.0, "enc": enc, "dec": 1.0, "total": (1 + enc) / 2, "total_beam": 1.1,
                        "num_beams": 4},
            "flops": {k: 1.0 for k in ("method_per_instance", "encoder_per_instance", "decoder_per_instance",
                                       "reference_encoder_per_instance", "reference_decoder_per_instance")},
            "train_seconds": 1.0, "eval_seconds": 1.0, "device": "cpu", "config": {},
            "lead_baseline": {"rouge1": 40.0, "rouge2": 20.0, "rougeL": 35.0}}
    path = tmp_path / f"{task}-{backbone}-{method}-{seed}.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_synthetic_rows_never_sit_beside_published_numbers(tmp_path):
    runs = [record(tmp_path, "synth-summary", "CNN-DM", True, "BART", "full", "default", 1, 90.0),
            record(tmp_path, "synth-summary", "CNN-DM", True, "BART", "hashee", "frequency", 1, 88.0, enc=1.5),
            record(tmp_path, "synth-summary", "CNN-DM", True, "BART-6L", "full", "default", 1, 80.0, enc=2.0)]
    out = [tmp_path / f"s.{ext}" for ext in ("csv", "md", "tex")]
    tidy = write_summarization(runs, load_published(), *out, preset="t")
    assert set(tidy["source"]) == {"ours"}
    assert list(dict.fromkeys(tidy["row"])) == ["BART", "HashEE w/ BART", "BART-6L", LEAD]
    md = out[1].read_text()
    assert "synth-summary (synthetic stand-in for CNN-DM)" in md and "Published" not in md
    assert "| HashEE w/ BART | 1.5× | 1.0× | 1.2× | 1.1× | 88.00/44.00/87.00 |" in md
    assert "40.00/20.00/35.00" in md and r"\toprule" in out[2].read_text()


def test_real_tasks_get_the_published_rows_of_their_columns(tmp_path):
    runs = [record(tmp_path, "CNN-DM", "CNN-DM", False, "BART", "full", "default", seed, 40.0 + seed) for seed in (1, 2)]
    tidy = write_summarization(runs, load_published(), *[tmp_path / f"s.{e}" for e in ("csv", "md", "tex")], preset="t")
    ours = tidy[(tidy.source == "ours") & (tidy.row == "BART")].iloc[0]
    assert ours.rouge1 == pytest.approx(41.5) and ours.n_seeds == 2      # mean over seeds
    published = tidy[tidy.source == "published"]
    assert set(published.task) == {"CNN-DM"}                              # no Reddit/CSL/TTNews column ran
    hashee = published[published.row == "HashEE w/ BART"].iloc[0]
    assert (hashee.rouge1, hashee.rouge2, hashee.rougeL, hashee.enc_speedup, hashee.total_speedup) == (41.04, 18.41, 37.65, 3.3, 1.8)
    assert "HashEE w/ CPT" not in set(published.row)                      # CPT rows have no CNN-DM number
    assert "| HashEE w/ BART | 3.3× | 1.0× | 1.8× | – | 41.04/18.41/37.65 |" in (tmp_path / "s.md").read_text()


def test_a_record_of_another_preset_is_refused(tmp_path):
    path = record(tmp_path, "CNN-DM", "CNN-DM", False, "BART", "full", "default", 1, 40.0)
    with pytest.raises(ValueError, match="preset 't', expected 'other'"):
        write_summarization([path], load_published(), *[tmp_path / f"s.{e}" for e in ("csv", "md", "tex")], preset="other")


def test_a_record_without_the_summarization_cost_is_refused(tmp_path):
    path = record(tmp_path, "CNN-DM", "CNN-DM", False, "BART", "full", "default", 1, 40.0)
    data = json.loads(open(path).read())
    del data["speedup"]["enc"]
    open(path, "w").write(json.dumps(data))
    with pytest.raises(ValueError, match="'enc' is a required property"):
        write_summarization([path], load_published(), *[tmp_path / f"s.{e}" for e in ("csv", "md", "tex")], preset="t")
