"""One HashEE (or full-model) run on a real ELUE task with MiniLM, through the library, outside the
workflow, for the recipe study in docs/benchmarks.md ("Real text"):

    python benchmarks/real_text_run.py --task MRPC --method rand-cons --epochs 3 --lr 1e-4 \
        --data-dir ../shared/data/elue --work resources/real-text

Prepares and tokenises the task once under --work, fits the hash with the run's seed, fine-tunes
(train on train, select on dev, score on test_full) and writes <work>/runs/<name>.json: the run
record plus the process CPU seconds and the speed-up against a 12-layer model of the same width
(the paper's convention; the record's own speed-up is against the run's 6 layers).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
from pathlib import Path

import numpy as np

from earlyexit.io_utils import atomic_write_json

MINILM = {"name": "minilm-6L", "source": "minilm", "paper_backbone": "ElasticBERT-6L"}


def reference_speedup(record: dict, tokenized: Path, reference_layers: int) -> float:
    """Full-model FLOPs of a `reference_layers`-deep twin over the test set / the run's FLOPs."""
    from transformers import AutoConfig

    from earlyexit.backbones import minilm_path
    from earlyexit.encoded import load_encoded
    from earlyexit.flops import ModelDims, full_flops

    config = AutoConfig.from_pretrained(str(minilm_path()))
    config.num_labels = 1 if record["metric"] == "pearson_spearman" else 2
    dims = ModelDims.from_hf_config(config)
    dims = dataclasses.replace(dims, num_layers=reference_layers)
    lengths = load_encoded(tokenized)["test"].lengths
    return float(np.mean([full_flops(int(n), dims) for n in lengths]) / record["flops"]["method_per_instance"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True)
    parser.add_argument("--method", required=True, help="full or a hash name")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--evals-per-epoch", type=int, default=1)
    parser.add_argument("--data-dir", required=True, help="folder with <task>/{train,dev,test_full}.tsv")
    parser.add_argument("--work", required=True, help="folder for prepared data, hashes and run records")
    parser.add_argument("--reference-layers", type=int, default=12)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import torch

    from earlyexit.backbones import BackboneSpec
    from earlyexit.data.prepare import prepare_task
    from earlyexit.experiment import run_experiment, tokenize_task
    from earlyexit.hash_artifacts import fit_hash_artifact
    from earlyexit.logging_utils import setup_logging
    from earlyexit.training import TrainConfig

    setup_logging()
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
    hash_path = None
    if args.method != "full":
        hash_path = work / "hashes" / f"{args.task}-{args.max_seq_len}-{args.method}-{args.seed}.npz"
        if not hash_path.exists():
            fit_hash_artifact(tokenized=tokenized, meta=json.loads(meta_path.read_text()), backbone=backbone,
                              hash_name=args.method, seed=args.seed, out_npz=hash_path,
                              out_summary=hash_path.with_suffix(".json"),
                              hash_config={"num_buckets": 6, "balance": "types", "mi_regression_bins": 2,
                                           "cluster_n_init": 4, "cluster_max_iter": 300})
    config = TrainConfig(lr=args.lr, batch_size=32, eval_batch_size=128, epochs=args.epochs, warmup_ratio=0.1,
                         max_seq_len=args.max_seq_len, evals_per_epoch=args.evals_per_epoch, bf16=False,
                         track_best_on_test=True)
    name = f"{args.task}-{args.method}-e{args.epochs}-lr{args.lr:g}-L{args.max_seq_len}-s{args.seed}"
    out = work / "runs" / f"{name}.json"
    record = run_experiment(preset="real-text", task_name=args.task, tokenized=tokenized, tokenized_meta=meta_path,
                            backbone=backbone, method=args.method, hash_path=hash_path, train_config=config,
                            seed=args.seed, out_json=out, progress=False)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    record["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    record["speedup"][f"flops_vs_{args.reference_layers}_layers"] = reference_speedup(
        record, tokenized, args.reference_layers)
    atomic_write_json(out, record)
    print(f"{name}: dev {record['dev']['score']:.2f} test {record['test']['score']:.2f} "
          f"speed-up {record['speedup']['flops']:.2f}x (vs {args.reference_layers} layers "
          f"{record['speedup'][f'flops_vs_{args.reference_layers}_layers']:.2f}x), {record['cpu_seconds']:.0f} CPU s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
