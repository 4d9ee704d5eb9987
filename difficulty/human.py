"""Human-defined difficulty (hashee-spec 3.1): simple (0) vs difficult (1) SNLI pairs.

The same networks as the model-defined study with one logit and BCE. Accuracy on the training
rows, the validation rows and test is recorded after every epoch (the paper's figure); the
checkpoint is chosen on validation. The comparison with chance is difficulty.baseline.chance_test.
"""

from __future__ import annotations

import numpy as np

from difficulty.baseline import carve_validation
from difficulty.predictors import Objective, build_model, encode, load_backbone, split_settings, train_network
from earlyexit.plumbing.torch_setup import pick_device


def accuracy_score(pred, gold) -> dict:
    accuracy = float((np.asarray(pred) == np.asarray(gold)).mean())
    return {"accuracy": accuracy, "select": accuracy}


def run_human(predictor: str, train, test, *, spec, settings: dict, val_fraction: float, seed: int,
              device: str = "auto", where: str = "training") -> dict:
    """A trained predictor (Majority: difficulty.baseline.human_majority_run); `where` names the
    settings' config key in errors. Returns the run record."""
    train_idx, val_idx = carve_validation(len(train), val_fraction, seed)
    test_idx = np.arange(len(test))
    cfg, model_settings = split_settings(predictor, settings, where)
    record = {"backbone": spec.name, "training": cfg.as_dict(), "model_settings": model_settings,
              "rows": {"train": len(train_idx), "validation": len(val_idx), "test": len(test)}}
    dev = pick_device(device)
    base, tokenizer = load_backbone(spec, seed)
    enc_train, enc_test = encode(train, tokenizer, cfg.max_seq_len), encode(test, tokenizer, cfg.max_seq_len)
    objective = Objective("multilabel", 1)
    model = build_model(predictor, base, 1, False, model_settings)
    eval_sets = {"train": (train, enc_train, train_idx), "validation": (train, enc_train, val_idx),
                 "test": (test, enc_test, test_idx)}
    result = train_network(model, train, enc_train, train_idx, eval_sets, objective, accuracy_score, cfg, seed,
                           tokenizer.pad_token_id, dev, keep=("test",), desc=f"human {predictor} seed {seed}")
    selected = result["selected"]
    record.update({name: selected[name] for name in eval_sets}, selected_epoch=selected["epoch"],
                  selected_step=selected["step"],
                  history=[{"epoch": h["epoch"], "step": h["step"], "loss": h["loss"],
                            **{f"{name}_accuracy": h[name]["accuracy"] for name in eval_sets}}
                           for h in result["history"]],
                  best_on_test=max(h["test"]["accuracy"] for h in result["history"]),
                  train_seconds=result["train_seconds"],
                  test_predictions=result["predictions"]["test"][0].ravel().astype(int).tolist())
    return record
