"""Shared test setup: true float32 on both twins, and tiny configs that still exercise odd shapes."""

from __future__ import annotations

import os

# Parity needs true fp32: MLX runs fp32 matmuls as TF32 on CUDA unless told otherwise (read at import).
os.environ.setdefault("MLX_ENABLE_TF32", "0")

import contextlib

import pytest

# The MLX twin loads a fast BLAS before mlx.core (jai_mlx/blas.py); a test module importing mlx.core
# first would leave MLX on its slow reference BLAS for the whole session.
with contextlib.suppress(ImportError):
    import jai_mlx  # noqa: F401

from jai.config import GPTConfig

TINY = GPTConfig(vocab_size=97, block_size=16, n_layer=1, n_head=2, n_embd=64)
ODD = GPTConfig(vocab_size=251, block_size=33, n_layer=3, n_head=3, n_embd=48)


@pytest.fixture(autouse=True, scope="session")
def _torch_fp32_one_thread() -> None:
    """True float32 matmuls, and one intra-op thread.

    Tests run small models, where a second OpenMP thread mostly waits, and on a busy 2-core machine
    makes PyTorch's tiny steps up to ~100x slower. One thread is also what the kill -9 subprocesses of
    the resume tests use, so their sums match in-process runs bit for bit.
    """
    try:
        import torch
    except ImportError:
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.set_num_threads(1)
