"""Where every artifact of the DAG lives. The rule files build their paths here, with wildcard
placeholders such as "{task}" passed through, or concrete names for targets."""

from __future__ import annotations

# The difficulty study's tables and figures (rules table_<name> / figure_<name> in
# workflow/rules/difficulty.smk), beside the HashEE ones.
DIFFICULTY_TABLES = ("difficulty_model", "difficulty_human")
DIFFICULTY_FIGURES = ("difficulty_human_accuracy", "difficulty_layer_labels")


def split_file(preset, task, split) -> str:
    return f"resources/{preset}/data/{task}/{split}.tsv"


def data_summary(preset, task) -> str:
    return f"resources/{preset}/data/{task}/summary.json"


def tokenized(preset, task, backbone, ext) -> str:
    return f"results/{preset}/tokenized/{task}/{backbone}.{ext}"


def hash_artifact(preset, task, backbone, hash_name, fit, ext) -> str:
    """fit: "train" (fitted once on the training split) or "seed<N>" (seed-dependent hashes)."""
    return f"results/{preset}/hashes/{task}/{backbone}/{hash_name}/{fit}.{ext}"


def pretrained_model(preset, backbone) -> str:
    """The HF folder a multi-exit pre-training writes (rule pretrain_backbone, earlyexit/training/pretraining.py)."""
    return f"results/{preset}/pretrained/{backbone}/model"


def pretrained_record(preset, backbone) -> str:
    """The pre-training's record: corpus, steps, tokens, each layer's held-back losses, CPU time, dtype."""
    return f"results/{preset}/pretrained/{backbone}/record.json"


def pretraining_state(preset, backbone) -> str:
    """Its resumable training state (one file per stage beside it; removed once the weights are written)."""
    return f"results/{preset}/pretrained/{backbone}/state.pt"


def run_record(preset, task, backbone, method, variant, seed) -> str:
    return f"results/{preset}/runs/{task}/{backbone}/{method}/{variant}/seed{seed}.json"


def checkpoint(preset, task, backbone, method, variant, seed) -> str:
    return f"results/{preset}/checkpoints/{task}/{backbone}/{method}/{variant}/seed{seed}.pt"


def sweep(preset, task, backbone, method, variant, seed) -> str:
    """A dynamic method's inference-time sweep on the checkpoint of one run (earlyexit/dynamic/sweeps.py)."""
    return f"results/{preset}/sweeps/{task}/{backbone}/{method}/{variant}/seed{seed}.json"


def matched(preset, task, backbone, method, variant) -> str:
    """The matched operating point of every seed of one dynamic curve (all its runs' sweep files;
    earlyexit/dynamic/matching.py, rule match_operating_points)."""
    return f"results/{preset}/matched/{task}/{backbone}/{method}/{variant}.json"


def timing(preset, task, backbone) -> str:
    """Wall-clock inference times of one task x backbone (earlyexit/cost/timing.py, rule time_inference)."""
    return f"results/{preset}/timing/{task}/{backbone}.json"


def table(preset, name) -> str:
    return f"results/{preset}/tables/{name}"


def figure(preset, name) -> str:
    return f"figures/{preset}/{name}"


def log_file(preset, rule, *parts) -> str:
    return "/".join([f"logs/{preset}/{rule}", *map(str, parts)]) + ".log"


# --- the difficulty study (paper Part A): datasets and run records under results/<preset>/difficulty/

def difficulty_data(preset, level, name) -> str:
    """name: train.tsv, test.tsv or counts.json of level human | sentence | token."""
    return f"results/{preset}/difficulty/data/{level}/{name}"


def difficulty_run(preset, level, predictor, seed) -> str:
    return f"results/{preset}/difficulty/runs/{level}/{predictor}/seed{seed}.json"


def difficulty_runs(preset, level, predictors, seeds) -> list[str]:
    return [difficulty_run(preset, level, p, s) for p in predictors for s in seeds]


def difficulty_targets(preset, enabled: bool = True) -> list[str]:
    """The study's final artifacts (what `rule all` needs); none when the config has no study."""
    if not enabled:
        return []
    return [
        *[table(preset, f"{name}.{ext}") for name in DIFFICULTY_TABLES for ext in ("csv", "md", "tex")],
        *[figure(preset, f"{name}.{ext}") for name in DIFFICULTY_FIGURES for ext in ("png", "pdf")],
    ]


# --- the summarization table (rules in workflow/rules/summarization.smk)

SUMMARIZATION_TABLE = "summarization"


def summarization_targets(preset, enabled: bool = True) -> list[str]:
    return [table(preset, f"{SUMMARIZATION_TABLE}.{ext}") for ext in ("csv", "md", "tex")] if enabled else []


# --- ConsistentEE for generation (rules in workflow/rules/llm.smk)

LLM_NAME = "llm_early_exit"


def llm_split(preset, task, split) -> str:
    return f"resources/{preset}/llm/data/{task}/{split}.jsonl"


def llm_exits(preset, task, backbone, seed, ext) -> str:
    """The shared multi-exit LM (pt) and its stages' summary (json), rule llm_exits."""
    return f"results/{preset}/llm/exits/{task}/{backbone}/seed{seed}.{ext}"


def llm_run(preset, task, backbone, method, variant, seed) -> str:
    return f"results/{preset}/llm/runs/{task}/{backbone}/{method}/{variant}/seed{seed}.json"


def llm_targets(preset, enabled: bool = True) -> list[str]:
    if not enabled:
        return []
    return [*[table(preset, f"{LLM_NAME}.{ext}") for ext in ("csv", "md", "tex")],
            *[figure(preset, f"{LLM_NAME}.{ext}") for ext in ("png", "pdf")]]
