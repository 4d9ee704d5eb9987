# One entry point for people and CI: each target sets up .venv first (idempotent).
#   make demo   - offline demo preset, whole DAG, 2 cores
#   make test   - the test suite (what .ci/run runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: setup test demo report lint dry-run-paper bench clean-demo

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

test: setup
	$(BIN)/python -m pytest -q

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --profile profiles/local --cores $(CORES) --configfile config/presets/demo.yaml

report: demo
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --profile profiles/local --cores 1 --configfile config/presets/demo.yaml --report report.zip

lint: setup
	$(BIN)/snakemake --lint

dry-run-paper: setup
	$(BIN)/snakemake -n --cores 8 --quiet rules

bench: setup
	$(BIN)/python benchmarks/bench_inference.py --backbone minilm --data-dir ../shared/data/elue --task SST-2 \
		--batch-sizes 1 32 --threads 2 --out benchmarks/results/cpu-minilm-sst2.json

clean-demo:
	rm -rf results/demo resources/demo figures/demo logs/demo
