"""Prompt -> target data of the decoder-LM generation experiments (config section llm_generation):
the synthetic demo task and the hub sources of the released ConsistentEE_LLM setting.

Split file = UTF-8 JSON lines {"prompt": ..., "target": ...}, one example per line.

Synthetic (named as such in every table: `synth-recall`): a prompt of n random symbols "a<i>", then
the target x1 s(x1) x2 s(x2) ... xn s(xn): each s(x) ("b<j>", a fixed random map) is fully
determined by the previous token (easy: one layer suffices), each next x must be recalled from the
prompt (find the previous x there, copy its successor: needs attention over the context, i.e.
depth). Half of the target tokens are easy, so exits can learn when to leave.

Hub (the released setting, consistentee-spec section 8): Alpaca instruction tuning (prompt in the
Alpaca template, target the response), CNN/DailyMail 3.0.0 and XSum summarization (prompt: the
article and an instruction; target: the reference summary). Split sizes are checked against the
published ones, so a truncated download stops with one line naming the task and split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from earlyexit.plumbing.files import atomic_path

SPLITS = ("train", "dev", "test")
SYNTHETIC_TASKS = ("synth-recall",)
HUB_TASKS = ("alpaca", "cnn-dm", "xsum")
TASKS = SYNTHETIC_TASKS + HUB_TASKS


@dataclass(frozen=True)
class HubLMSource:
    dataset: str
    config: str | None
    splits: dict          # our split -> hub split ("train[:-N]" style slices are ours: see `carve`)
    sizes: dict           # hub split -> rows it must have
    revision: str | None = None


# Alpaca has only a train split: dev and test are its last 2,000 rows (1,000 each), fixed.
HUB_SOURCES = {
    "alpaca": HubLMSource("tatsu-lab/alpaca", None, {"train": "train", "dev": "train", "test": "train"},
                          {"train": 52002}),
    "cnn-dm": HubLMSource("abisee/cnn_dailymail", "3.0.0", {"train": "train", "dev": "validation", "test": "test"},
                          {"train": 287113, "validation": 13368, "test": 11490}),
    "xsum": HubLMSource("EdinburghNLP/xsum", None, {"train": "train", "dev": "validation", "test": "test"},
                        {"train": 204045, "validation": 11332, "test": 11334}),
}
ALPACA_HELD_OUT = 1000
ALPACA_TEMPLATE = ("Below is an instruction that describes a task{extra}. Write a response that appropriately "
                   "completes the request.\n\n### Instruction:\n{instruction}\n\n{input}### Response:\n")
SUMMARY_INSTRUCTION = "Summarize the following article.\n\n### Article:\n{article}\n\n### Summary:\n"


def write_examples(path, examples: list[dict]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps({"prompt": e["prompt"], "target": e["target"]}, ensure_ascii=False) + "\n"
                               for e in examples), encoding="utf-8")


def read_examples(path) -> list[dict]:
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not a JSON line ({error.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not isinstance(row.get("target"), str):
            raise ValueError(f"{path}:{number}: needs string fields 'prompt' and 'target'")
        out.append(row)
    if not out:
        raise ValueError(f"{path}: no examples")
    return out


# ---------------------------------------------------------------- synthetic

def synthetic_symbols(symbols: int) -> list[str]:
    """The synthetic task's whole vocabulary: prompt symbols a<i>, successor symbols b<i>."""
    return [f"a{i}" for i in range(symbols)] + [f"b{i}" for i in range(symbols)]


def synthetic_recall(sizes: dict, symbols: int, length: int, seed: int) -> dict[str, list[dict]]:
    """synth-recall splits (see the module docstring); the successor map is drawn once from `seed`."""
    if length > symbols:
        raise ValueError(f"synth-recall: {length} distinct prompt symbols need symbols >= length (got {symbols})")
    rng = np.random.default_rng(seed)
    successor = rng.permutation(symbols)
    out = {}
    for index, split in enumerate(SPLITS):
        split_rng = np.random.default_rng([seed, index])
        rows = []
        for _ in range(sizes[split]):
            xs = split_rng.choice(symbols, size=length, replace=False)
            rows.append({"prompt": " ".join(f"a{x}" for x in xs),
                         "target": " ".join(f"a{x} b{successor[x]}" for x in xs)})
        out[split] = rows
    return out


def token_kinds(target_words: list[str]) -> np.ndarray:
    """synth-recall: 1 for an easy target token (a successor b<j>), 0 for one recalled from context."""
    return np.array([w.startswith("b") for w in target_words], dtype=np.int64)


# ---------------------------------------------------------------- hub

def _check_sizes(task: str, source: HubLMSource, loaded: dict) -> None:
    for split, expected in source.sizes.items():
        got = len(loaded[split])
        if got != expected:
            raise ValueError(f"task {task}: hub split {source.dataset}/{split} has {got} rows, expected {expected} "
                             "(a partial or changed download)")


def _alpaca_prompt(row: dict) -> str:
    extra = ", paired with an input that provides further context" if row["input"] else ""
    context = f"### Input:\n{row['input']}\n\n" if row["input"] else ""
    return ALPACA_TEMPLATE.format(extra=extra, instruction=row["instruction"], input=context)


def hub_examples(task: str, cache_dir=None) -> dict[str, list[dict]]:
    """The task's train/dev/test examples from the hub (needs network), sizes checked."""
    from datasets import load_dataset

    source = HUB_SOURCES[task]
    loaded = {split: load_dataset(source.dataset, source.config, split=split, cache_dir=cache_dir,
                                  revision=source.revision) for split in source.sizes}
    _check_sizes(task, source, loaded)
    if task == "alpaca":
        rows = [{"prompt": _alpaca_prompt(r), "target": r["output"]} for r in loaded["train"]]
        n = ALPACA_HELD_OUT
        return {"train": rows[:-2 * n], "dev": rows[-2 * n:-n], "test": rows[-n:]}
    article, summary = ("article", "highlights") if task == "cnn-dm" else ("document", "summary")
    return {split: [{"prompt": SUMMARY_INSTRUCTION.format(article=r[article]), "target": r[summary]}
                    for r in loaded[source.splits[split]]] for split in SPLITS}
