"""How much of the demo DAG's wall-clock goes to starting Python and importing torch per job.

    python benchmarks/bench_dag_overhead.py --demo-wall-seconds 397 --cores 2 \
        --out benchmarks/results/cpu-dag-overhead.json

Every rule of the workflow is a `script:` job, i.e. a fresh interpreter that imports torch (and
for most, transformers) before doing any work. This counts the demo's jobs with a forced dry run
of the workflow, times a fresh `python -c "import torch, transformers"` (median of --repeats),
and relates jobs x start-up to the demo's measured wall-clock (passed in: the demo itself takes
minutes, see docs/benchmarks.md). With --cores jobs running side by side, the share of the
cores' time is also given.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import wait_for_quiet  # noqa: E402

from earlyexit.plumbing.files import atomic_write_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def count_jobs(configfile: str) -> dict[str, int]:
    """Jobs per rule of the whole DAG (forced dry run, so existing outputs do not hide any)."""
    snakemake = Path(sys.executable).with_name("snakemake")
    out = subprocess.run([str(snakemake), "-n", "--forceall", "--cores", "2", "--configfile", configfile],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        sys.exit(f"snakemake dry run of {configfile} failed: {out.stderr.strip().splitlines()[-1:]}")
    table = out.stdout.split("Job stats:", 1)[-1]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}
    if "total" not in counts:
        sys.exit(f"no job table in the dry run of {configfile}")
    return counts


def startup_seconds(code: str, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):        # the first run warms the file cache
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configfile", default="config/presets/demo.yaml")
    p.add_argument("--demo-wall-seconds", type=float, required=True, help="measured wall-clock of the demo DAG")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-load", type=float, default=0.7)
    p.add_argument("--max-wait", type=float, default=180)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    counts = count_jobs(args.configfile)
    jobs = counts["total"] - counts.get("all", 0)   # `all` is a target with no process behind it
    load = wait_for_quiet(args.max_load, args.max_wait)
    bare = startup_seconds("pass", args.repeats)
    imports = startup_seconds("import torch, transformers", args.repeats)
    job_like = startup_seconds("import torch, transformers, earlyexit.runs.experiment, earlyexit.models.backbones", args.repeats)
    total = jobs * job_like
    record = {
        "configfile": args.configfile, "jobs": jobs, "jobs_per_rule": counts,
        "load_avg_1min_before": load, "load_avg_1min_after": os.getloadavg()[0],
        "python_start_seconds": bare, "import_torch_transformers_seconds": imports,
        "import_torch_transformers_earlyexit_seconds": job_like,
        "demo_wall_seconds": args.demo_wall_seconds, "cores": args.cores,
        "startup_job_seconds": total,
        "fraction_of_wall": total / args.demo_wall_seconds,
        "fraction_of_core_time": total / (args.demo_wall_seconds * args.cores),
        "command": "python " + " ".join(sys.argv),
    }
    print(record)
    atomic_write_json(args.out, record)


if __name__ == "__main__":
    main()
