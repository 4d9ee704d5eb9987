"""The two steps of the decoder-LM generation grid (workflow/rules/llm.smk):

- `train_exits` (rule llm_exits): the base LM and its per-layer heads (llm_training stages base and
  exits) and the per-token memorized layers, saved as one checkpoint shared by every method;
- `run_llm_method` (rule llm_run): one method x variant on that checkpoint (its own stages, if any,
  then its operating points on the test split), written as one schema-checked record.
"""

from __future__ import annotations

import functools
import logging
import platform
import time
from pathlib import Path

import torch

from earlyexit.plumbing.files import atomic_path, atomic_write_json
from earlyexit.plumbing.records import SCHEMAS

log = logging.getLogger("earlyexit.llm")
RECORD_SCHEMA = SCHEMAS / "llm_result.schema.yaml"


def _setup(task: str, split_dir, backbone: dict, settings: dict, seed: int, device):
    from earlyexit.generation.llm_data import load_causal_lm, load_lm_splits, tokenizer_for
    from earlyexit.models.multi_exit_lm import MultiExitCausalLM

    tokenizer = tokenizer_for(backbone, task, settings["synthetic"])
    splits = load_lm_splits(split_dir, tokenizer, settings["max_prompt_len"], settings["max_target_len"])
    hf = load_causal_lm(backbone, len(tokenizer), seed, device)
    policy = settings["policy"]
    model = MultiExitCausalLM(hf, policy=policy["kind"], policy_width=policy["width"]).to(device)
    return tokenizer, splits, model


def _max_len(settings: dict) -> int:
    return settings["max_prompt_len"] + settings["max_target_len"]


def train_exits(*, task: str, split_dir, backbone: dict, settings: dict, seed: int, device, out_checkpoint,
                out_summary, state=None, progress: bool = False) -> dict:
    """Stages base (unless disabled) and exits, then the memorized layers of the training split."""
    from earlyexit.generation.llm_training import memorized_layers_of, run_stage, stage_config

    device = torch.device(device)
    torch.manual_seed(seed)
    tokenizer, splits, model = _setup(task, split_dir, backbone, settings, seed, device)
    lora = settings["lora"] if settings["lora"]["enabled"] else None
    summary = {"task": task, "backbone": backbone, "seed": seed, "stages": {}}
    for stage in ("base", "exits"):
        entry = settings["stages"][stage]
        if stage == "base" and not entry["enabled"]:
            continue
        result = run_stage(model, stage, splits, stage_config(entry, _max_len(settings)), seed=seed,
                           pad_id=tokenizer.pad_id, device=device, settings={},
                           state=state.stage(stage) if state else None, progress=progress, lora=lora,
                           micro_batch_size=entry["micro_batch_size"])
        summary["stages"][stage] = {"history": result["history"], "selected_step": result["selected"]["step"],
                                    "train_seconds": result["train_seconds"]}
        if stage == "base":
            model.reset_heads()          # every exit head starts from the trained model's own head
    memorized = memorized_layers_of(model, splits["train"], tokenizer.pad_id, settings["stages"]["exits"]["eval_batch_size"], device)
    counts = torch.bincount(torch.as_tensor([int(m) for row in memorized for m in row]), minlength=model.num_layers + 1)
    summary["memorized_layer_counts"] = counts[1:].tolist()
    with atomic_path(out_checkpoint) as tmp:
        torch.save({"model": model.state_dict(), "memorized": memorized, "vocab_size": len(tokenizer)}, tmp)
    atomic_write_json(out_summary, summary)
    if state:
        state.remove()
    return summary


def run_llm_method(*, preset: str, task: str, split_dir, backbone_name: str, backbone: dict, settings: dict,
                   method: str, variant: str, seed: int, device, checkpoint, out_json, state=None,
                   progress: bool = False) -> dict:
    from earlyexit.data.llm_tasks import SYNTHETIC_TASKS
    from earlyexit.generation.llm_eval import score_point
    from earlyexit.methods import get_method
    from earlyexit.methods.base import LLMRunContext
    from earlyexit.plumbing.records import schema_problem

    chosen = get_method(method)
    if not chosen.generation_lm:
        raise ValueError(f"method {method}: not a decoder-LM generation method")
    device = torch.device(device)
    torch.manual_seed(seed)
    tokenizer, splits, model = _setup(task, split_dir, backbone, settings, seed, device)
    saved = torch.load(checkpoint, map_location=device, weights_only=False)
    model.load_state_dict(saved["model"])
    for p in model.parameters():
        p.requires_grad_(False)
    synthetic = task in SYNTHETIC_TASKS
    generation = settings["generation"]
    score = functools.partial(score_point, model, splits["test"], tokenizer, max_new_tokens=generation["max_new_tokens"],
                              kv_mode=generation["kv_mode"], device=device, timing=generation["timing"],
                              limit=generation["test_limit"],
                              synthetic=synthetic)

    def point(rule_kind, rule, setting, depth=None, own_head=False):
        return score(rule_kind=rule_kind, rule=rule, setting=setting, depth=depth, own_head=own_head)

    ctx = LLMRunContext(model=model, splits=splits, tokenizer=tokenizer, memorized=saved["memorized"],
                        variant=variant, seed=seed, settings=settings, device=device, state=state, score=point,
                        progress=progress)
    started = time.perf_counter()
    points = chosen.run_llm(ctx)
    record = {
        "preset": preset, "task": task, "synthetic": synthetic, "backbone": backbone_name,
        "paper_backbone": backbone.get("paper_backbone", backbone_name), "method": method, "variant": variant,
        "label": chosen.label(variant), "family": chosen.family, "seed": seed, "num_layers": model.num_layers,
        "metric": "rougeL", "generation": dict(generation), "points": points,
        "seconds": time.perf_counter() - started, "device": str(device), "torch": torch.__version__,
        "python": platform.python_version(),
    }
    problem = schema_problem(record, RECORD_SCHEMA)
    if problem:
        raise ValueError(f"{out_json}: the record breaks {RECORD_SCHEMA.name}: {problem}")
    atomic_write_json(out_json, record)
    if state:
        state.remove()
    return record
