"""One HashEE (or full-model) run on a real ELUE task with MiniLM, through the library, outside the
workflow, for the recipe study in docs/benchmarks.md ("Real text"):

    python benchmarks/real_text_run.py --task MRPC --method rand-cons --epochs 3 --lr 1e-4 \
        --data-dir ../shared/data/elue --work resources/real-text

Prepares and tokenises the task once under --work, fits the hash with the run's seed, fine-tunes
(train on train, select on dev, score on test_full) and writes <work>/runs/<name>.json: the run
record (both speed-up conventions: against a 12-layer model of the same width, the paper's, and
against the run's own 6 layers) plus the process CPU seconds. The workflow's `elue-minilm` preset
runs the same steps for the whole grid; this script is for one-off recipe experiments.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
from pathlib import Path

from earlyexit.plumbing.files import atomic_write_json

MINILM = {"name": "minilm-6L", "source": "minilm", "paper_backbone": "ElasticBERT-6L"}
# The recipe study's own choices; everything else is the config schema's default (the one place).
STUDY = {"hash": {"num_buckets": 6, "cluster_n_init": 4}, "training": {"batch_size": 32, "eval_batch_size": 128}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True)
    parser.add_argument("--method", required=True, help="full, or a hash name (HashEE's variant)")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--max-seq-len", type=int, default=None, help="default: the schema's training.max_seq_len")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--evals-per-epoch", type=int, default=None, help="default: the schema's training.evals_per_epoch")
    parser.add_argument("--data-dir", required=True, help="folder with <task>/{train,dev,test_full}.tsv")
    parser.add_argument("--work", required=True, help="folder for prepared data, hashes and run records")
    parser.add_argument("--reference-layers", type=int, default=12)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import torch

    from earlyexit.models.backbones import BackboneSpec
    from earlyexit.data.prepare import prepare_task
    from earlyexit.runs.experiment import run_experiment, tokenize_task
    from earlyexit.hashing.artifacts import fit_hash_artifact
    from earlyexit.plumbing.logs import setup_logging
    from earlyexit.plumbing.schema_sections import fill_section
    from earlyexit.training.loop import TrainConfig

    setup_logging()
    # unset options take the schema's defaults (the one place defaults live)
    schema_training = fill_section({"training": {**STUDY["training"], "lr": args.lr, "epochs": args.epochs}}, "training")
    args.max_seq_len = args.max_seq_len or schema_training["max_seq_len"]
    args.evals_per_epoch = args.evals_per_epoch or schema_training["evals_per_epoch"]
    torch.set_num_threads(1)
    work = Path(args.work)
    backbone = BackboneSpec(**MINILM)
    data = work / "data" / args.task
    if not (data / "summary.json").exists():
        prepare_task(args.task, "dir", data, data_dir=args.data_dir)
    tokenized = work / "tokenized" / f"{args.task}-{args.max_seq_len}.npz"
    meta_path = tokenized.with_suffix(".json")
    if not meta_path.exists():
        tokenize_task(task_name=args.task, split_dir=data, backbone=backbone, max_seq_len=args.max_seq_len,
                      out_npz=tokenized, out_meta=meta_path)
    artifacts = {}
    if args.method != "full":
        hash_path = work / "hashes" / f"{args.task}-{args.max_seq_len}-{args.method}-{args.seed}.npz"
        if not hash_path.exists():
            fit_hash_artifact(tokenized=tokenized, meta=json.loads(meta_path.read_text()), backbone=backbone,
                              hash_name=args.method, seed=args.seed, out_npz=hash_path,
                              out_summary=hash_path.with_suffix(".json"),
                              hash_config=fill_section({"hash": dict(STUDY["hash"])}, "hash"))
        artifacts["hash"] = hash_path
    training = fill_section({"training": {**STUDY["training"], "lr": args.lr, "epochs": args.epochs,
                                          "max_seq_len": args.max_seq_len, "evals_per_epoch": args.evals_per_epoch}},
                            "training")
    config = TrainConfig.from_config({k: v for k, v in training.items()
                                      if k not in ("max_seq_len_per_task", "save_checkpoint")})
    name = f"{args.task}-{args.method}-e{args.epochs}-lr{args.lr:g}-L{args.max_seq_len}-s{args.seed}"
    out = work / "runs" / f"{name}.json"
    record = run_experiment(preset="real-text", task_name=args.task, tokenized=tokenized, tokenized_meta=meta_path,
                            backbone=backbone, method="full" if args.method == "full" else "hashee",
                            variant="default" if args.method == "full" else args.method, artifacts=artifacts,
                            train_config=config, seed=args.seed, reference_layers=args.reference_layers,
                            out_json=out, progress=False)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    record["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    atomic_write_json(out, record)
    speed = record["speedup"]
    print(f"{name}: dev {record['dev']['score']:.2f} test {record['test']['score']:.2f} speed-up "
          f"{speed['flops']:.2f}x vs {args.reference_layers} layers ({speed['flops_vs_own_full']:.2f}x vs own 6), "
          f"{record['cpu_seconds']:.0f} CPU s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
