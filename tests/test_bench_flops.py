"""The FLOP formula, checked against counts made independently of it; the roof and its ratio."""

from __future__ import annotations

import pytest

from jai.benchmarks import flops
from jai.config import GPTConfig

TINY = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=64)


def test_matmul_params_by_hand():
    # per block: qkv 64x192, proj 64x64, fc 64x256, proj 256x64 = 12 * 64^2; head (tied) 64 x 97, once
    assert flops.matmul_params(TINY) == 2 * (64 * 192 + 64 * 64 + 64 * 256 + 256 * 64) + 64 * 97 == 104_512


def test_train_flops_formula():
    d, L, T = 64, 2, 16
    assert flops.train_flops_per_token(TINY) == 6 * flops.matmul_params(TINY) + 6 * L * T * d
    assert flops.forward_flops_per_token(TINY) * 3 == flops.train_flops_per_token(TINY)
    assert flops.attention_flops_per_token(TINY, T, causal=False) == 2 * flops.attention_flops_per_token(
        TINY, T
    )


def test_gemm_shapes_carry_exactly_the_matmul_flops():
    tokens = 3 * 16
    assert sum(g.flops for g in flops.forward_gemms(TINY, tokens)) == 2 * flops.matmul_params(TINY) * tokens
    assert sum(g.flops for g in flops.train_gemms(TINY, tokens)) == 6 * flops.matmul_params(TINY) * tokens
    names = {g.name for g in flops.train_gemms(TINY, tokens)}
    assert {"head", "head.dx", "head.dw", "qkv.dw"} <= names


def test_matmul_flops_agree_with_torch_flop_counter():
    """torch's FlopCounterMode, on a real forward + backward of the PyTorch twin, counts every mm/addmm."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from jai_torch.model import GPT, loss_fn

    model = GPT(TINY)
    B, T = 3, TINY.block_size
    x = torch.randint(0, TINY.vocab_size, (B, T))
    with FlopCounterMode(display=False) as counter:
        loss_fn(model, x, x).backward()
    counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    dense = sum(v for k, v in counts.items() if k in ("aten.mm", "aten.addmm", "aten.bmm"))
    assert dense == 6 * flops.matmul_params(TINY) * B * T


# Run in a fresh interpreter that imports only torch: the test session has imported jai_mlx (conftest.py),
# whose fast-BLAS preload puts OpenBLAS in the global symbol scope, and torch imported after it crashes
# in batched matmuls (MKL's entry points resolve to OpenBLAS's). See docs/benchmarks.md.
ATTENTION_FLOPS = """
import torch
from torch.utils.flop_counter import FlopCounterMode
B, H, T, hd = 2, {H}, {T}, {hd}
q, k, v = (torch.randn(B, H, T, hd, requires_grad=True) for _ in range(3))
with FlopCounterMode(display=False) as counter:
    y = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
    y.sum().backward()
print(counter.get_total_flops() / (B * T))
"""


def test_attention_flops_agree_with_torch_flop_counter():
    """Attention written out as two matmuls: the counter sees the full T x T square, twice ours (causal)."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    H, T, hd = TINY.n_head, TINY.block_size, TINY.head_dim
    code = ATTENTION_FLOPS.format(H=H, T=T, hd=hd)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    per_layer_full = float(out.stdout.strip())
    assert per_layer_full * TINY.n_layer == 3 * flops.attention_flops_per_token(TINY, T, causal=False)


def test_roof_and_ratio():
    gemms = [flops.Gemm("a", 10, 10, 10, count=2), flops.Gemm("b", 20, 10, 5)]
    seconds = {"a": 1e-6, "b": 2e-6}
    r = flops.roof(seconds, gemms)
    assert r["gemm_flops"] == 2 * 10 * 10 * 10 * 2 + 2 * 20 * 10 * 5 == 6000
    assert r["gemm_seconds"] == pytest.approx(4e-6)
    assert r["gemm_flops_per_s"] == pytest.approx(1.5e9)
    # 1000 tokens/s at 1.2e6 FLOPs each against a 1.5e9 FLOP/s roof: 80% of the roof
    assert flops.roof_ratio(1000, 1.2e6, 1.5e9) == pytest.approx(0.8)
    assert flops.mfu(1000, 1e6, None) is None
    assert flops.mfu(1000, 1e6, 1e10) == pytest.approx(0.1)
