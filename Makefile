# Two commands for a new user:  `make run` (set up, then the main job) and `make test` (set up, then the tests).
# ARGS passes options on: make run ARGS="--backend mlx", make bench ARGS="--quick".
# Setup is a local virtual environment in .venv with both twins installed. The constraints file pins
# torch==2.13.0: on this project's CPU machines (and CI) that resolves to the small CPU build; on
# macOS and CUDA Linux it is the usual PyPI build (MPS / CUDA).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= mlx,torch,serve,bench,dev,gguf,llama

.PHONY: setup run test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints/cpu.txt -e ".[$(EXTRAS)]"
	touch $@

run: setup
	$(BIN)/jai run $(ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/jai bench $(ARGS)

clean:
	rm -rf $(VENV) out bench-results .pytest_cache .ruff_cache
