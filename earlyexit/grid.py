"""Run a config's grid without Snakemake (for machines that only have Python, e.g. a bare GPU box).

Same steps, same library calls and same files as the DAG (paths from `earlyexit.layout`); an output
that already exists is kept, as Snakemake would. The DAG stays the reference way to run the suite.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import yaml

from earlyexit import layout
from earlyexit.config_check import config_errors
from earlyexit.hashing import HASH_NAMES

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
log = logging.getLogger("earlyexit.grid")


def _max_seq_len(config, task):
    training = config["training"]
    return training.get("max_seq_len_per_task", {}).get(task, training["max_seq_len"])


def _training(config, task):
    entry = {k: v for k, v in config["training"].items() if k != "max_seq_len_per_task"}
    return {**entry, "max_seq_len": _max_seq_len(config, task)}


def run_grid(config: dict, *, tasks=None, backbones=None, methods=None, seeds=None, tables=True) -> list[str]:
    """Run (the selected part of) the grid; returns the run-record paths of the selection."""
    from earlyexit.backbones import BackboneSpec
    from earlyexit.data.prepare import prepare_task
    from earlyexit.experiment import run_experiment, tokenize_task
    from earlyexit.hash_artifacts import fit_hash_artifact
    from earlyexit.io_utils import read_json
    from earlyexit.training import TrainConfig

    preset = config["preset"]
    data = config["data"]
    records = []
    for task in tasks or config["tasks"]:
        summary = layout.data_summary(preset, task)
        if not Path(summary).exists():
            prepare_task(task, data["source"], str(Path(summary).parent), data_dir=data.get("data_dir"),
                         hub_cache=data.get("hub_cache"), hub_revision=data.get("hub_revision"),
                         synthetic_sizes=data.get("synthetic_sizes"), seed=data.get("seed", 0))
        for name in backbones or list(config["backbones"]):
            spec = BackboneSpec.from_config(name, config["backbones"][name])
            npz, meta = (layout.tokenized(preset, task, name, ext) for ext in ("npz", "json"))
            if not Path(meta).exists():
                tokenize_task(task_name=task, split_dir=Path(summary).parent, backbone=spec,
                              max_seq_len=_max_seq_len(config, task), out_npz=npz, out_meta=meta)
            for method in methods or config["methods"]:
                for seed in seeds or config["seeds"]:
                    hash_path = None
                    if method in HASH_NAMES:
                        variant = layout.hash_variant(method, seed)
                        hash_path = layout.hash_artifact(preset, task, name, method, variant, "npz")
                        if not Path(hash_path).exists():
                            fit_hash_artifact(tokenized=npz, meta=read_json(meta), backbone=spec, hash_name=method,
                                              hash_config=config["hash"], seed=seed if variant != "train" else 0,
                                              out_npz=hash_path,
                                              out_summary=layout.hash_artifact(preset, task, name, method, variant, "json"))
                    record = layout.run_record(preset, task, name, method, seed)
                    records.append(record)
                    if Path(record).exists():
                        continue
                    ckpt = layout.checkpoint(preset, task, name, method, seed) if config["training"].get("save_checkpoint") else None
                    run_experiment(preset=preset, task_name=task, tokenized=npz, tokenized_meta=meta, backbone=spec,
                                   method=method, hash_path=hash_path, train_config=TrainConfig.from_config(_training(config, task)),
                                   seed=seed, out_json=record, checkpoint=ckpt, device=config.get("device", "auto"))
    if tables:
        write_tables(preset, sorted(Path(p).as_posix() for p in Path(f"results/{preset}/runs").rglob("*.json")))
    return records


def write_tables(preset: str, records: list[str]) -> None:
    from analysis.collect import collect_runs, write_runs_csv
    from analysis.figures import plot_score_vs_speedup
    from analysis.hash_table import write_hash_table
    from analysis.published import load_published

    runs = collect_runs(records)
    write_runs_csv(runs, layout.table(preset, "runs.csv"))
    published = load_published("data/published/hashee_published.csv")
    write_hash_table(runs, published, *(layout.table(preset, f"hash_functions.{e}") for e in ("csv", "md", "tex")),
                     preset=preset)
    plot_score_vs_speedup(runs, layout.figure(preset, "score_vs_speedup.png"),
                          layout.figure(preset, "score_vs_speedup.pdf"), published_df=published)


def _set(config: dict, assignment: str) -> None:
    """--set training.epochs=2 : a YAML value at a dotted key."""
    key, _, value = assignment.partition("=")
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(value)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m earlyexit run-grid", description=__doc__)
    p.add_argument("--configfile", default="config/config.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--tasks", nargs="+")
    p.add_argument("--backbones", nargs="+")
    p.add_argument("--methods", nargs="+")
    p.add_argument("--seeds", nargs="+", type=int)
    p.add_argument("--no-tables", action="store_true", help="skip collecting results into tables/figures")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = yaml.safe_load(Path(args.configfile).read_text())
        for assignment in args.set:
            _set(config, assignment)
    except (OSError, yaml.YAMLError) as error:
        print(f"{args.configfile}: {error}".splitlines()[0], file=sys.stderr)
        return 1
    errors = config_errors(config, SCHEMA)
    if errors:
        print(f"{args.configfile}: config error: {errors[0]}", file=sys.stderr)
        return 1
    try:
        run_grid(config, tasks=args.tasks, backbones=args.backbones, methods=args.methods, seeds=args.seeds,
                 tables=not args.no_tables)
    except (ValueError, FileNotFoundError, RuntimeError, KeyError) as error:
        print(str(error).strip().splitlines()[0], file=sys.stderr)
        return 1
    return 0
