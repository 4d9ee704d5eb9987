"""The experiment steps the workflow scripts call: `tokenize_task` (once per task x backbone) and
`run_experiment` (one task x backbone x method x variant x seed: the method from the registry
trains, dev-selects, tests and counts its cost; this step writes the one run record).
Training is resumable: its state lives beside the record until the record is written.
Hash fitting lives in `hash_artifacts` (no torch)."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import torch

from earlyexit.models.backbones import BackboneSpec, backbone_depth, load_tokenizer, stand_in_name
from earlyexit.data.encoded import encode_examples, load_encoded, save_encoded
from earlyexit.data.examples import read_examples
from earlyexit.data.tasks import get_task
from earlyexit.cost.flops import speedup_record
from earlyexit.runs import completed as completed_runs
from earlyexit.runs.instances import record_field
from earlyexit.plumbing.cpu_info import cpu_label
from earlyexit.plumbing.files import atomic_write_json, read_json
from earlyexit.plumbing.run_lock import run_lock
from earlyexit.methods import get_method, run_name
from earlyexit.plumbing.torch_setup import pick_device, set_seed
from earlyexit.runs.context import run_context, run_settings
from earlyexit.training.state import StateFile, file_digest
from earlyexit.training.loop import TrainConfig

log = logging.getLogger("earlyexit.runs.experiment")
SPLITS = ("train", "dev", "test")


def _split_provenance(split_dir: str | Path) -> dict:
    """What the splits' summary.json says of where they came from: the data.subsample they were cut
    with and, for a local folder, the file each split was read from (None where it says nothing)."""
    path = Path(split_dir) / "summary.json"
    summary = read_json(path) if path.is_file() else {}
    return {"subsample": summary.get("subsample"), "files": summary.get("files")}


def tokenize_task(*, task_name: str, split_dir: str | Path, backbone: BackboneSpec, max_seq_len: int,
                  out_npz: str | Path, out_meta: str | Path, max_target_len: int | None = None) -> dict:
    """Tokenise train/dev/test once per task x backbone; the meta JSON records what hashes need.
    Summarization tasks: sources up to `max_seq_len` tokens, targets up to `max_target_len`."""
    task = get_task(task_name)
    if task.kind == "summarization":
        from earlyexit.generation.seq2seq import tokenize_summarization

        if max_target_len is None:
            raise ValueError(f"task {task_name}: summarization needs max_target_len")
        return tokenize_summarization(task=task, split_dir=split_dir, backbone=backbone, max_source_len=max_seq_len,
                                      max_target_len=max_target_len, out_npz=out_npz, out_meta=out_meta)
    tokenizer = load_tokenizer(backbone)
    encoded = {s: encode_examples(tokenizer, read_examples(Path(split_dir) / f"{s}.tsv", task), max_seq_len,
                                  task.is_regression) for s in SPLITS}
    meta = {
        "task": task_name, "backbone": backbone.name, "max_seq_len": max_seq_len,
        "vocab_size": len(tokenizer), "special_ids": sorted(map(int, tokenizer.all_special_ids)),
        "pad_id": int(tokenizer.pad_token_id), "num_layers": backbone_depth(dataclasses.asdict(backbone), download=True),
        "num_labels": task.num_labels,
        "mean_tokens": {s: float(encoded[s].lengths.mean()) for s in SPLITS},
        # inputs cut at max_seq_len, per split
        "cut_at_max_len": {s: int((encoded[s].lengths >= max_seq_len).sum()) for s in SPLITS},
        "counts": {s: int(len(encoded[s].lengths)) for s in SPLITS},
        **_split_provenance(split_dir),
    }
    save_encoded(out_npz, encoded)
    # Digest of the tokenised splits, computed once here: each run's resumable state is tied to it.
    meta["sha256"] = file_digest(out_npz)
    atomic_write_json(out_meta, meta)
    return meta


def train_state_path(out_json: str | Path) -> Path:
    """The run's resumable training state: beside its record, in the run's own folder."""
    return Path(out_json).with_suffix(".train_state.pt")


def run_experiment(*, preset: str, task_name: str, tokenized: str | Path, tokenized_meta: str | Path,
                   backbone: BackboneSpec, method: str, variant: str, artifacts: dict, train_config: TrainConfig,
                   seed: int, reference_layers: int, out_json: str | Path, checkpoint: str | Path | None = None,
                   device: str | None = None, progress: bool = True, method_settings: dict | None = None,
                   generation: dict | None = None, reference_decoder_layers: int | None = None,
                   train_setting: dict | None = None, keep_completed: bool = False) -> dict:
    """Run `method` (a name in the methods registry) in `variant` and write one run record (schema:
    workflow/schemas/result.schema.yaml) with both speed-up conventions (`reference_layers`: the
    depth of the paper's reference model of this backbone family). A training state left beside
    `out_json` by an interrupted run of the same settings and inputs is resumed. `method_settings`:
    the method's own config section (RunContext.settings; dynamic methods: `dynamic.<method>`);
    None: the schema's defaults. `train_setting`: the value(s) of the method's training-time sweep
    this run trains at (Method.train_sweep, e.g. {"alpha": 0.02}), laid over `method_settings` and
    recorded (the run's record then names its run, "<variant>@alpha=0.02"). `keep_completed`: also
    keep the finished run as its completed state (earlyexit.runs.completed), and restore a matching one
    instead of training (a job's runs that finished before the job failed). The run holds its lock (plumbing.run_lock) throughout."""
    with run_lock(out_json):
        return _run_locked(preset=preset, task_name=task_name, tokenized=tokenized, tokenized_meta=tokenized_meta,
                           backbone=backbone, method=method, variant=variant, artifacts=artifacts,
                           train_config=train_config, seed=seed, reference_layers=reference_layers, out_json=out_json,
                           checkpoint=checkpoint, device=device, progress=progress, method_settings=method_settings,
                           generation=generation, reference_decoder_layers=reference_decoder_layers,
                           train_setting=train_setting, keep_completed=keep_completed)


def _run_locked(*, preset, task_name, tokenized, tokenized_meta, backbone, method, variant, artifacts, train_config,
                seed, reference_layers, out_json, checkpoint, device, progress, method_settings, generation,
                reference_decoder_layers, train_setting, keep_completed) -> dict:
    started = time.perf_counter()
    set_seed(seed)
    chosen = get_method(method)
    train_setting = dict(train_setting or {})
    method_settings = run_settings(chosen, variant, method_settings, train_setting)
    task = get_task(task_name)
    dev_ = pick_device(device)
    meta = read_json(tokenized_meta)
    # What else must match for a saved state to be resumed (the loop adds its settings and seed):
    # the run's identity and the contents of its inputs, so changed data is never continued.
    state = StateFile(str(train_state_path(out_json)), {
        "task": task_name, "backbone": dict(backbone.__dict__), "method": method, "variant": variant,
        "device": dev_.type, "tokenized": meta["sha256"], "settings": method_settings,
        "artifacts": {name: file_digest(path) for name, path in sorted(artifacts.items())},
        **({"generation": generation} if generation else {}),
    })
    # everything the finished record follows from: a completed state is restored only for the same
    completed_fingerprint = {"run": state.identity, "preset": preset, "seed": seed, "reference_layers": reference_layers,
                             "reference_decoder_layers": reference_decoder_layers,
                             "training": {k: v for k, v in train_config.as_dict().items() if k != "checkpoint_every_steps"}}
    if keep_completed:
        restored = completed_runs.restore(out_json, checkpoint, completed_fingerprint)
        if restored is not None:
            return restored
    ctx = run_context(chosen, task=task, backbone=backbone, variant=variant, seed=seed, splits=load_encoded(tokenized),
                      meta=meta, artifacts=artifacts, train_config=train_config, device=dev_,
                      method_settings=method_settings, checkpoint=str(checkpoint) if checkpoint else None,
                      progress=progress, train_state=state, tokenized=str(tokenized), generation=generation,
                      reference_layers=reference_layers, reference_decoder_layers=reference_decoder_layers)
    outcome = chosen.run(ctx)
    cost = outcome.cost or speedup_record(outcome.tokens, outcome.method_flops, outcome.elue_depth, outcome.dims,
                                          reference_layers)
    record = {
        "preset": preset,
        "task": task_name,
        "paper_task": task.paper_task,
        "synthetic": task.synthetic,
        "backbone": backbone.name,
        "paper_backbone": backbone.paper_backbone or backbone.name,
        "num_layers": outcome.dims.num_layers,
        "method": method,
        "variant": variant,
        "run": run_name(variant, train_setting),
        "train_setting": train_setting,
        "label": chosen.row_label(variant, backbone.paper_backbone or backbone.name, stand_in_name(backbone)),
        "family": chosen.family,
        "seed": seed,
        "metric": task.metric,
        "dev": outcome.dev,
        "test": outcome.test,
        "best_on_test": outcome.best_on_test,
        "selected_step": outcome.selected_step,
        "history": outcome.history,
        **cost,
        **outcome.extra,
        # each test instance's outcome (earlyexit/runs/instances.py): the claims ledger bootstraps over them
        **({"test_instances": record_field(task, outcome.test_predictions, getattr(ctx.splits["test"], "labels", None))}
           if outcome.test_predictions is not None else {}),
        "train_seconds": outcome.train_seconds,
        "eval_seconds": outcome.eval_seconds,
        "total_seconds": time.perf_counter() - started,
        "device": torch.cuda.get_device_name(dev_) if dev_.type == "cuda" else cpu_label(torch.get_num_threads()),
        # what the GEMMs ran in: bf16 autocast (CUDA by default, CPU when training.cpu_bf16) or fp32
        "precision": "bf16-autocast" if train_config.autocast_bf16(dev_) else "fp32",
        # the splits trained and scored on: their sizes and any cut made before tokenisation
        "data": {"counts": meta.get("counts"), "subsample": meta.get("subsample"), "files": meta.get("files")},
        "config": {"training": train_config.as_dict(), "backbone": backbone.__dict__,
                   "artifacts": ctx.artifacts, "tokenized": str(tokenized), "method_settings": method_settings},
    }
    atomic_write_json(out_json, record)
    if keep_completed:                          # before the state goes: a kill in between loses nothing
        completed_runs.keep(out_json, checkpoint, completed_fingerprint)
    state.remove()                              # the record holds the results now (every stage's state)
    speed = cost["speedup"]
    log.info("%s %s %s/%s seed %d: test %.2f, FLOPs speed-up %.2fx vs %d layers (%.2fx vs own %d)", task_name,
             backbone.name, method, variant, seed, outcome.test["score"], speed["flops"], speed["reference_layers"],
             speed["flops_vs_own_full"], outcome.dims.num_layers)
    return record
