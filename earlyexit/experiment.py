"""Steps of a HashEE experiment called by the workflow scripts and the CLI: `tokenize_task`
(once per task x backbone) and `run_experiment` (fine-tune, dev-select, evaluate on test,
account FLOPs, write one result JSON). Hash fitting lives in `hash_artifacts` (no torch)."""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig

from earlyexit.backbones import BackboneSpec, load_classifier, load_tokenizer, minilm_path
from earlyexit.batching import attach_exit_layers
from earlyexit.encoded import encode_examples, load_encoded, save_encoded
from earlyexit.data.examples import read_examples
from earlyexit.data.tasks import get_task
from earlyexit.flops import ModelDims, speedup_report
from earlyexit.hashing import TokenExitHash
from earlyexit.io_utils import atomic_path, atomic_write_json, read_json
from earlyexit.models.hashee import HashEEForSequenceClassification
from earlyexit.torch_setup import pick_device, set_seed
from earlyexit.fine_tuning import fine_tune
from earlyexit.training import TrainConfig

log = logging.getLogger("earlyexit.experiment")
SPLITS = ("train", "dev", "test")


def backbone_num_layers(spec: BackboneSpec) -> int:
    if spec.num_layers:
        return spec.num_layers
    if spec.source == "random":
        return 6
    path = str(minilm_path()) if spec.source == "minilm" else spec.hub_id
    return AutoConfig.from_pretrained(path, revision=spec.revision).num_hidden_layers


def tokenize_task(*, task_name: str, split_dir: str | Path, backbone: BackboneSpec, max_seq_len: int,
                  out_npz: str | Path, out_meta: str | Path) -> dict:
    """Tokenise train/dev/test once per task x backbone; the meta JSON records what hashes need."""
    task = get_task(task_name)
    tokenizer = load_tokenizer(backbone)
    encoded = {s: encode_examples(tokenizer, read_examples(Path(split_dir) / f"{s}.tsv", task), max_seq_len,
                                  task.is_regression) for s in SPLITS}
    meta = {
        "task": task_name, "backbone": backbone.name, "max_seq_len": max_seq_len,
        "vocab_size": len(tokenizer), "special_ids": sorted(map(int, tokenizer.all_special_ids)),
        "pad_id": int(tokenizer.pad_token_id), "num_layers": backbone_num_layers(backbone),
        "num_labels": task.num_labels,
        "mean_tokens": {s: float(encoded[s].lengths.mean()) for s in SPLITS},
        "truncated": {s: int((encoded[s].lengths >= max_seq_len).sum()) for s in SPLITS},
    }
    save_encoded(out_npz, encoded)
    atomic_write_json(out_meta, meta)
    return meta


def run_experiment(*, preset: str, task_name: str, tokenized: str | Path, tokenized_meta: str | Path, backbone: BackboneSpec, method: str,
                   hash_path: str | Path | None, train_config: TrainConfig, seed: int, out_json: str | Path,
                   checkpoint: str | Path | None = None, device: str | None = None,
                   progress: bool = True) -> dict:
    """Fine-tune `backbone` on `task_name` with HashEE (`method` = a hash name) or without exiting
    (`method` = "full"), through the same code path, and write one result JSON."""
    started = time.perf_counter()
    set_seed(seed)
    task = get_task(task_name)
    dev_ = pick_device(device)
    meta = read_json(tokenized_meta)
    splits = load_encoded(tokenized)
    model = HashEEForSequenceClassification(load_classifier(backbone, task.num_labels, seed))
    num_layers = model.num_layers
    token_hash = None if method == "full" else TokenExitHash.load(hash_path)
    if token_hash is not None and token_hash.name != method:
        raise ValueError(f"{hash_path}: holds a {token_hash.name!r} hash, the run asks for {method!r}")
    encoded = {}
    for index, name in enumerate(SPLITS):
        # Per-split rng: rand-incons draws are fixed per (seed, split), like the authors' preprocessing.
        encoded[name] = attach_exit_layers(splits[name], token_hash, num_layers, np.random.default_rng([seed, index]))

    result = fine_tune(model, encoded["train"], encoded["dev"], encoded["test"], metric=task.metric,
                       regression=task.is_regression, cfg=train_config, seed=seed,
                       pad_id=meta["pad_id"], device=dev_, progress=progress)
    speed = speedup_report(encoded["test"].exit_layers, ModelDims.from_hf_config(model.hf.config))
    if checkpoint:
        with atomic_path(checkpoint) as tmp:
            torch.save(model.hf.state_dict(), tmp)
    record = {
        "preset": preset,
        "task": task_name,
        "paper_task": task.paper_task,
        "backbone": backbone.name,
        "paper_backbone": backbone.paper_backbone or backbone.name,
        "num_layers": num_layers,
        "method": method,
        "seed": seed,
        "metric": task.metric,
        "dev": result["dev"],
        "test": result["test"],
        "best_on_test": result["best_on_test"],
        "selected_step": result["selected_step"],
        "history": result["history"],
        "speedup": {"flops": speed.flops_speedup, "elue": speed.elue_speedup},
        "flops": {"full_per_instance": speed.full_flops_per_instance,
                  "method_per_instance": speed.method_flops_per_instance},
        "mean_exit_layer": speed.mean_exit_layer,
        "train_seconds": result["train_seconds"],
        "eval_seconds": result["eval_seconds"],
        "total_seconds": time.perf_counter() - started,
        "device": torch.cuda.get_device_name(dev_) if dev_.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "config": {"training": train_config.as_dict(), "backbone": backbone.__dict__,
                   "hash_path": str(hash_path) if hash_path else None, "tokenized": str(tokenized)},
    }
    atomic_write_json(out_json, record)
    log.info("%s %s %s seed %d: test %.2f, FLOPs speed-up %.2fx (ELUE %.2fx)", task_name, backbone.name, method,
             seed, result["test"]["score"], speed.flops_speedup, speed.elue_speedup)
    return record
