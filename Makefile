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
# The main job needs the twins and the server; the tests also need the outside readers they check
# against (transformers, mlx-lm, peft, gguf) and llama.cpp itself, which pip builds from source once
# (about 20 CPU-minutes on 2 cores; pip's wheel cache keeps it), so `make run` does not wait for it.
EXTRAS_run ?= mlx,torch,serve,bench,retrieval
EXTRAS_bench ?= $(EXTRAS_run),dev
EXTRAS_test ?= $(EXTRAS_bench),gguf,llama,tensorboard,wandb
# llama.cpp's multimodal library is not needed here and is a large part of the build.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF

.PHONY: setup run test lint bench clean
.PRECIOUS: $(VENV)/.installed-%

setup: $(VENV)/.installed-run

# One venv; each target installs the extras it needs (pip skips what is already there). setuptools boxes
# a note into every editable install whose folders are mapped (data/ -> jai.data) about its import finder,
# nothing a JAI user can act on, so that one note is silenced; other warnings still show.
$(VENV)/.installed-%: pyproject.toml constraints/cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" \
		$(BIN)/python -m pip install --quiet -c constraints/cpu.txt -e ".[$(EXTRAS_$*)]"
	touch $@

run: setup
	$(BIN)/jai run $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-bench
	$(BIN)/jai bench $(ARGS)

clean:
	rm -rf $(VENV) out bench-results .pytest_cache .ruff_cache
