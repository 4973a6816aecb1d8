"""Loading a checkpoint into a twin for generation, and the stop ids a generation ends at.

Imports neither framework nor FastAPI at module top: `jai sample`, `jai run`, `jai eval` and `jai serve`
load a model through here, and only the chosen twin (`jai_<backend>`) is ever imported.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from jai.devices import BACKENDS, twin_module
from jai.inference.sampling import SamplingConfig

# Special tokens that end an answer, looked up in the tokenizer by name when no stop ids are given.
STOP_TOKENS = ("[EOS]", "[/ANSWER]")

GenerateFn = Callable[[list[int], SamplingConfig], list[int]]


def default_stop_ids(tokenizer: Any) -> tuple[int, ...]:
    """The tokenizer's end-of-text id and the ids of STOP_TOKENS, whichever it has."""
    ids = []
    eos = getattr(tokenizer, "eos_id", None)
    if isinstance(eos, int):
        ids.append(eos)
    token_id = getattr(tokenizer, "token_id", None)
    for name in STOP_TOKENS if callable(token_id) else ():
        try:
            found = token_id(name)
        except (KeyError, ValueError):
            continue
        if isinstance(found, int) and found not in ids:
            ids.append(found)
    return tuple(ids)


def calm_openmp() -> None:
    """Make OpenMP's idle threads sleep at once instead of spinning, if torch is not loaded yet and the
    user has not chosen (OMP_WAIT_POLICY, GOMP_SPINCOUNT).

    Why: decoding runs a few hundred tiny parallel regions per token. After each one, PyTorch's libgomp
    keeps its threads spinning for up to 300,000 iterations waiting for the next; with as many threads as
    cores (PyTorch's default) and other processes on those cores, the spinning helper takes the core the
    main thread needs, and each region costs a scheduler time slice. Measured on a 2-core machine under
    load (default model, batch 1): 3.7-7.5 tokens/s, the main thread and its helper burning the same CPU
    time, 10x the work; with GOMP_SPINCOUNT=0, 37-47 tokens/s; with one thread, 34-65. `jai serve` was
    fast by accident: decoding in a worker thread gives libgomp a second thread pool, more threads than
    CPUs, and then libgomp itself throttles spinning. libgomp reads the variable when torch loads it, so
    this works only before the twin is imported; training (large regions) does not come through here.
    """
    if "torch" not in sys.modules and not ({"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(os.environ)):
        os.environ["GOMP_SPINCOUNT"] = "0"


def calm_openblas() -> None:
    """One OpenBLAS thread for the MLX twin's decoding on Linux, unless the user chose
    (OPENBLAS_NUM_THREADS) or the library is loaded already (jai_mlx/blas.py loads it on import).

    Why: the same trouble as `calm_openmp`, worse. OpenBLAS's helper threads busy-wait between calls,
    and decoding makes hundreds of small calls per token. Measured on a 2-core machine under load
    (default model): batch 1, 0.9-2.2 tokens/s with the default two threads, 23-143 with one; batch 8,
    28-54 against 163-203. (OPENBLAS_THREAD_TIMEOUT=4, a shorter busy-wait, gave only 4-11.)
    """
    if "jai_mlx" not in sys.modules and "OPENBLAS_NUM_THREADS" not in os.environ:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def load_twin(ckpt_dir: str | os.PathLike, backend: str, device: str = "auto") -> tuple[Any, ModuleType]:
    """A checkpoint's model in the chosen twin on `device` ("auto": the twin's best), and the twin's
    generate module (its `generate` / `generate_tokens`, jai.inference.decode's, take the model)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'mlx' or 'torch', got {backend!r}")
    if backend == "torch":
        calm_openmp()
    else:
        calm_openblas()
    devices = twin_module(backend, "device")
    checkpoint = twin_module(backend, "checkpoint")
    generate = twin_module(backend, "generate")
    name = devices.resolve_device(device)
    if backend == "mlx":
        devices.use_device(name)  # MLX places arrays on a default device, not per model
        return checkpoint.load_model(ckpt_dir), generate
    return checkpoint.load_model(ckpt_dir, device=name), generate


def load_generate_fn(
    ckpt_dir: str | os.PathLike, backend: str, device: str = "auto"
) -> tuple[GenerateFn, Any]:
    """`generate_fn(prompt_ids, cfg) -> new ids` from a checkpoint with the chosen twin, and the
    model's config. Calls from several threads take turns: one model is not decoded by two threads at
    once (for concurrent requests, batch them: jai/inference/batching.py)."""
    model, twin = load_twin(ckpt_dir, backend, device)
    lock = threading.Lock()

    def generate_fn(ids: list[int], cfg: SamplingConfig) -> list[int]:
        with lock:
            return twin.generate_tokens(model, [ids], cfg)[0]

    return generate_fn, model.config
