# Two commands for a new user:  `make run` (set up, then the main job) and `make test` (set up, then the tests).
# ARGS passes options on: make run ARGS="--backend mlx", make bench ARGS="--quick".
# Setup is a local virtual environment in .venv with both twins installed; the `jai` command lives there
# (source .venv/bin/activate, or call .venv/bin/jai). The constraints file pins torch==2.13.0: where pip
# is configured with a CPU wheel source (this project's CI) that is the small CPU build; from PyPI on
# Linux it is the CUDA build. For the CPU build anywhere, first run
#   python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
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
