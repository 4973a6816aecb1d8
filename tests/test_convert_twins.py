"""Twin to twin, in memory and through the file: not one bit changes, in fp32, bf16 or fp16."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import torch
from mlx.utils import tree_flatten, tree_map

from jai.config import GPTConfig
from jai.convert.hf import read_safetensors
from jai.convert.twins import mlx_to_torch, torch_to_mlx
from jai_mlx import checkpoint as mlx_ckpt
from jai_mlx import model as mlx_model
from jai_torch import checkpoint as torch_ckpt
from jai_torch import model as torch_model
from tests.conftest import TINY

TWO = GPTConfig(vocab_size=101, block_size=24, n_layer=2, n_head=3, n_embd=48)
CFGS = pytest.mark.parametrize("cfg", [TINY, TWO], ids=["tiny", "two-layer"])
DTYPES = {
    "F32": (torch.float32, mx.float32),
    "BF16": (torch.bfloat16, mx.bfloat16),
    "F16": (torch.float16, mx.float16),
}
DTYPE = pytest.mark.parametrize("dtype", list(DTYPES))


def torch_bits(t: torch.Tensor) -> tuple[str, tuple[int, ...], bytes]:
    t = t.detach().contiguous()
    return str(t.dtype).removeprefix("torch."), tuple(t.shape), t.view(torch.uint8).numpy().tobytes()


def mlx_bits(a: mx.array) -> tuple[str, tuple[int, ...], bytes]:
    return str(a.dtype).removeprefix("mlx.core."), tuple(a.shape), np.array(a.view(mx.uint8)).tobytes()


def torch_params(model: torch_model.GPT) -> dict[str, tuple]:
    return {name: torch_bits(t) for name, t in model.state_dict().items()}


def mlx_params(model: mlx_model.GPT) -> dict[str, tuple]:
    return {name: mlx_bits(a) for name, a in tree_flatten(model.parameters())}


def perturbed_torch(cfg: GPTConfig, dtype: str, seed: int = 0) -> torch_model.GPT:
    """A torch twin whose every tensor (biases and LayerNorms too) holds distinct random values."""
    model = torch_model.GPT(cfg, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model.to(DTYPES[dtype][0])


def perturbed_mlx(cfg: GPTConfig, dtype: str, seed: int = 0) -> mlx_model.GPT:
    model = mlx_model.GPT(cfg, seed=seed)
    keys = iter(mx.random.split(mx.random.key(seed + 1), 64))
    model.update(tree_map(lambda p: p + 0.05 * mx.random.normal(p.shape, key=next(keys)), model.parameters()))
    model.set_dtype(DTYPES[dtype][1])
    mx.eval(model.parameters())
    return model


@CFGS
@DTYPE
def test_torch_to_mlx_is_bit_exact(cfg, dtype):
    tm = perturbed_torch(cfg, dtype, seed=1)
    mm = torch_to_mlx(tm)
    assert isinstance(mm, mlx_model.GPT) and mm.config == cfg
    expected, found = torch_params(tm), mlx_params(mm)
    assert set(found) == set(expected)
    for name, bits in expected.items():
        assert found[name] == bits, name


@CFGS
@DTYPE
def test_mlx_to_torch_is_bit_exact(cfg, dtype):
    mm = perturbed_mlx(cfg, dtype, seed=2)
    tm = mlx_to_torch(mm)
    assert isinstance(tm, torch_model.GPT) and tm.config == cfg
    expected, found = mlx_params(mm), torch_params(tm)
    assert set(found) == set(expected)
    for name, bits in expected.items():
        assert found[name] == bits, name
    assert all(p.requires_grad for p in tm.parameters())  # still trainable


@CFGS
def test_converted_models_compute_the_same_function(cfg):
    tm = perturbed_torch(cfg, "F32", seed=3).eval()
    mm = torch_to_mlx(tm)
    mm.eval()
    x = np.random.default_rng(0).integers(0, cfg.vocab_size, (2, cfg.block_size))
    with torch.no_grad():
        expected = tm(torch.from_numpy(x)).numpy()
    found = np.array(mm(mx.array(x)))
    np.testing.assert_allclose(found, expected, atol=2e-5, rtol=0)
    back = mlx_to_torch(mm)
    with torch.no_grad():
        assert torch.equal(back(torch.from_numpy(x)), torch.from_numpy(expected))  # same weights


def test_training_mode_follows_the_source():
    tm = torch_model.GPT(TINY).eval()
    assert torch_to_mlx(tm).training is False
    mm = mlx_model.GPT(TINY)
    mm.train()
    assert mlx_to_torch(mm).training is True


@pytest.mark.parametrize("dtype", ["F32", "BF16"])
@CFGS
def test_round_trip_mlx_file_torch_file_mlx(tmp_path, cfg, dtype):
    original = perturbed_mlx(cfg, dtype, seed=4)
    mlx_ckpt.save_model(original, tmp_path / "a")
    via_torch = torch_ckpt.load_model(tmp_path / "a")
    assert torch_params(via_torch) == mlx_params(original)
    torch_ckpt.save_model(via_torch, tmp_path / "b")
    # the two files (written by different libraries) hold the same tensors, bit for bit
    file_a = read_safetensors(tmp_path / "a" / "model.safetensors")
    file_b = read_safetensors(tmp_path / "b" / "model.safetensors")
    assert {k: (t.dtype, t.data.tobytes()) for k, t in file_a.items()} == {
        k: (t.dtype, t.data.tobytes()) for k, t in file_b.items()
    }
    back = mlx_ckpt.load_model(tmp_path / "b")
    expected, found = mlx_params(original), mlx_params(back)
    assert set(found) == set(expected)
    for name, bits in expected.items():
        assert found[name] == bits, name


def test_import_convert_loads_no_framework():
    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys, jai.convert, jai.convert.twins, jai.convert.hf, jai.convert.nanogpt, jai.convert.cli\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlx', 'torch')))"
    )
    cmd = [sys.executable, "-c", code]
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
