"""Both twins on one GPU: the same checkpoint gives the same logits, loss and gradients.

    python -m jai.benchmarks.cuda_parity parity.json     # needs PyTorch with CUDA and MLX with CUDA

The CPU parity tests (tests/test_parity.py) hold the twins to 1e-4; this is the check for a machine
with an NVIDIA GPU, where MLX runs its CUDA backend and PyTorch CUDA (TF32 off, so float32 means float32
on the PyTorch side). It prints and writes the largest differences instead of asserting a bound: what
a GPU's kernels give is a measurement (docs/benchmarks.md has the H200's).
"""

from __future__ import annotations

import json
import sys
import tempfile

import mlx.core as mx
import mlx.nn as mnn
import numpy as np
import torch
from mlx.utils import tree_flatten

from jai.config import GPTConfig
from jai_mlx import checkpoint as mlx_checkpoint
from jai_mlx import model as mlx_model
from jai_torch import checkpoint as torch_checkpoint
from jai_torch import model as torch_model


def main(out: str) -> int:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cfg = GPTConfig()  # the seed model, 6 x 6 x 384
    ckpt = tempfile.mkdtemp(prefix="jai-cuda-parity-")
    torch_checkpoint.save_model(torch_model.GPT(cfg, seed=7), ckpt)
    tm, mm = torch_checkpoint.load_model(ckpt).cuda(), mlx_checkpoint.load_model(ckpt)
    rng = np.random.default_rng(0)
    x = rng.integers(0, cfg.vocab_size, (4, cfg.block_size))
    y = rng.integers(0, cfg.vocab_size, (4, cfg.block_size))
    with torch.no_grad():
        logits_t = tm(torch.from_numpy(x).cuda()).float().cpu().numpy()
    logits_m = np.array(mm(mx.array(x)))
    tm.zero_grad()
    loss_t = torch_model.loss_fn(tm, torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda())
    loss_t.backward()
    loss_m, grads_m = mnn.value_and_grad(mm, mlx_model.loss_fn)(mm, mx.array(x), mx.array(y))
    grads_m = dict(tree_flatten(grads_m))
    relative = {
        name: float(np.abs(p.grad.cpu().numpy() - np.array(grads_m[name])).max() / p.grad.abs().max().item())
        for name, p in tm.named_parameters()
    }
    worst = max(relative, key=relative.get)
    result = {
        "devices": [str(mx.default_device()), torch.cuda.get_device_name(0)],
        "logits_max_abs_diff": float(np.abs(logits_t - logits_m).max()),
        "logits_scale": float(np.abs(logits_t).max()),
        "loss_torch": loss_t.item(),
        "loss_mlx": loss_m.item(),
        "grad_worst_relative_diff": relative[worst],
        "grad_worst": worst,
    }
    print(json.dumps(result, indent=1))
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "cuda_parity.json"))
