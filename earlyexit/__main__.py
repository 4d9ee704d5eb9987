"""`python -m earlyexit run-grid ...`: the DAG's steps without Snakemake (see earlyexit/grid.py)."""

import sys

from earlyexit import grid

COMMANDS = {"run-grid": grid.main}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(f"usage: python -m earlyexit {{{','.join(COMMANDS)}}} [--help]", file=sys.stderr)
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
