# Run `make help` for the list of targets. Everything runs inside .venv, created on first use.
SHELL := /bin/bash
PYTHON_BOOT ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0

.DEFAULT_GOAL := help
.PHONY: help venv demo oof report test test-all lint bench gpu-check kernels kaggle-datasets clean

help: ## List every target with a one-line description
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

venv: $(STAMP) ## Create .venv and install the pinned dependencies (requirements.txt, requirements-ocr.txt) and this repo, editable

$(STAMP): requirements.txt requirements-ocr.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON_BOOT) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade-strategy only-if-needed -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -r requirements-ocr.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: venv ## Run the whole pipeline (dvc repro) on the embedded synthetic data; prints scores and the submission path
	dvc repro
	@echo; cat artifacts/report/summary.txt; echo "submission: $(CURDIR)/artifacts/submission.csv"

oof: venv ## All OOF maps: every active segmenter on every fold (train@<model>-<fold>), its test maps, and the matcher
	dvc repro train test_maps match

report: venv ## (Re)build the report from the current OOF outputs (dvc repro report)
	dvc repro report
	@cat artifacts/report/summary.txt

test: venv ## Lint (ruff) and run the fast test suite
	ruff check .
	ruff format --check .
	pytest -q

test-all: venv ## Run every test, including the ones marked slow
	pytest -q -m ""

lint: venv ## ruff lint and format check
	ruff check .
	ruff format --check .

bench: venv ## Benchmarks; results in bench/results.json and bench/results.md
	python -m bench.run

gpu-check: venv ## On a CUDA machine (<= 8 min): AMP training + GPU inference speed, peak memory, fold time -> bench/results.md
	python -m bench.gpu_check

kernels: venv ## Generate the Kaggle kernels (kaggle_kernels/build/: inference + one training kernel per segmenter)
	python -m kaggle_kernels.build kernels

kaggle-datasets: venv ## Prepare Kaggle dataset folders (weights bundle, wheels, code) under kaggle_kernels/build/datasets
	python -m kaggle_kernels.build datasets --bundle artifacts/bundle

clean: ## Remove generated artefacts (keeps .venv and data)
	rm -rf artifacts .pytest_cache .ruff_cache
