"""Quantized checkpoints (`jai quantize`): one file, three readers (the MLX twin, the PyTorch twin and
mlx-lm), the same greedy tokens, and a perplexity cost within the stated bounds.

The model is trained here for real (PyTorch, 300 steps, a few seconds) on a noisy permutation chain over
a real BPE tokenizer's vocabulary, so its logits are sharp and its validation loss (~1.0 nats) sits far
below the untrained log(vocab): quantization noise has something to spoil. The packing itself is checked
code for code against `mx.quantize`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import torch

from jai import cli
from jai.checkpoint import folder, quant_pack, weights
from jai.checkpoint.quant import QuantError, QuantSpec
from jai.checkpoint.quant_file import from_float32, quantize_checkpoint, to_float32
from jai.config import GPTConfig
from jai.inference.sampling import SamplingConfig
from jai.tokenizer import Tokenizer
from jai_mlx import checkpoint as mlx_ckpt
from jai_mlx import generate as mlx_gen
from jai_torch import checkpoint as torch_ckpt
from jai_torch import generate as torch_gen
from jai_torch.model import GPT, cross_entropy

LINES = [
    "백엔드 개발자를 모집합니다. 자격 요건: Python 3년 이상.",
    "We are hiring a backend engineer in Seoul. Salary: negotiable.",
    "데이터 엔지니어 채용, 근무지: 서울 강남구, 연봉 협의.",
    "Requirements: SQL, Spark, and a love of clean pipelines.",
] * 3
BLOCK = 32
# Measured on this model: 8-bit moves perplexity by under 0.01%, 4-bit raises it by 0.31% (groups of 32)
# and 0.34% (groups of 64), the same in both twins. The bounds are the issue's: 1% and 5%.
MAX_RISE = {8: 0.01, 4: 0.05}


def chain(vocab: int, n: int, rng: np.random.Generator, perm: np.ndarray) -> np.ndarray:
    """Token t is followed by perm[t] 90% of the time, by a uniform token otherwise."""
    jumps, noise = rng.random(n) < 0.1, rng.integers(0, vocab, n)
    out, t = np.empty(n, np.int64), 0
    for i in range(n):
        t = noise[i] if jumps[i] else perm[t]
        out[i] = t
    return out


def windows(tokens: np.ndarray, rows: int | None = None) -> torch.Tensor:
    n = (len(tokens) - 1) // BLOCK
    x = torch.from_numpy(tokens[: n * BLOCK + 1])
    idx = torch.arange(n)[:, None] * BLOCK + torch.arange(BLOCK + 1)[None, :]
    return x[idx][:rows]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A float checkpoint (with tokenizer) of a model trained on the chain, and held-out tokens."""
    root = tmp_path_factory.mktemp("quant")
    tok = Tokenizer.train(LINES, vocab_size=320, min_frequency=1, show_progress=False)
    tok.save(root / "tokenizer.json")
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=BLOCK, n_layer=2, n_head=2, n_embd=64)
    rng = np.random.default_rng(0)
    perm = rng.permutation(cfg.vocab_size)
    train, val = chain(cfg.vocab_size, 60_000, rng, perm), chain(cfg.vocab_size, 8_000, rng, perm)
    torch.manual_seed(0)
    model = GPT(cfg, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    data = windows(train)
    for _ in range(300):
        batch = data[torch.randint(len(data), (16,))]
        loss = cross_entropy(model(batch[:, :-1]), batch[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch_ckpt.save_model(model.eval(), root / "float", tokenizer=root / "tokenizer.json")
    return root / "float", val


@pytest.fixture(scope="module")
def quantized(trained, tmp_path_factory) -> dict[tuple[int, int], Path]:
    root = tmp_path_factory.mktemp("q")
    return {
        (bits, gs): quantize_checkpoint(trained[0], root / f"q{bits}g{gs}", QuantSpec(bits, gs))
        for bits in (8, 4)
        for gs in (32, 64)
    }


def val_loss_torch(ckpt: Path, val: np.ndarray) -> float:
    model = torch_ckpt.load_model(ckpt)
    batch = windows(val)
    with torch.no_grad():
        return float(cross_entropy(model(batch[:, :-1]), batch[:, 1:]))


def val_loss_mlx(ckpt: Path, val: np.ndarray) -> float:
    from jai_mlx.model import cross_entropy as mlx_ce

    model = mlx_ckpt.load_model(ckpt)
    batch = mx.array(windows(val).numpy())
    return float(mlx_ce(model(batch[:, :-1]), batch[:, 1:]))


# --- the packing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("group_size", [32, 64, 128])
def test_numpy_packing_is_mx_quantize_code_for_code(bits, group_size):
    w = np.random.default_rng(bits + group_size).normal(size=(48, 256)).astype(np.float32) * 0.05
    w[0, :group_size] = 0.25  # a flat group: the edge rounds to code 0, MLX's special case
    w[1, :group_size] = 0.0
    w[2, :group_size] = -np.linspace(0.0, 1.0, group_size)  # the larger edge is the minimum
    spec = QuantSpec(bits, group_size)
    words, scales, biases = quant_pack.quantize(w, spec)
    mq, ms, mb = mx.quantize(mx.array(w), group_size=group_size, bits=bits)
    np.testing.assert_array_equal(words, np.array(mq))
    np.testing.assert_array_equal(scales, np.array(ms))
    np.testing.assert_array_equal(biases, np.array(mb))
    mine = quant_pack.dequantize(words, scales, biases, spec)
    theirs = mx.dequantize(mq, ms, mb, group_size=group_size, bits=bits)
    np.testing.assert_array_equal(mine, np.array(theirs))
    codes = quant_pack.unpack(words, spec)
    np.testing.assert_array_equal(quant_pack.pack(codes, spec), words)
    assert np.abs(mine - w).max() <= np.abs(scales).max() / 2 + 1e-6  # within half a step of the original


@pytest.mark.parametrize(("dtype", "mx_dtype"), [("BF16", mx.bfloat16), ("F16", mx.float16)])
def test_half_precision_weights_quantize_like_mx(dtype, mx_dtype):
    w = np.random.default_rng(2).normal(size=(32, 128)).astype(np.float32) * 0.02
    w = to_float32(dtype, w.shape, from_float32(w, dtype))  # weights as a half-precision file holds them
    words, scales, biases = quant_pack.quantize(w, QuantSpec(4, 64))
    mq, ms, mb = mx.quantize(mx.array(w).astype(mx_dtype), group_size=64, bits=4)
    np.testing.assert_array_equal(words, np.array(mq))
    for mine, theirs in ((scales, ms), (biases, mb)):  # stored in the file's dtype, rounded as MLX rounds
        stored = to_float32(dtype, mine.shape, from_float32(mine, dtype))
        np.testing.assert_array_equal(stored, np.array(theirs.astype(mx.float32)))


def test_a_bf16_checkpoint_keeps_bf16_scales_and_loads_everywhere(trained, tmp_path):
    from mlx_lm import load

    torch_ckpt.save_model(torch_ckpt.load_model(trained[0]), tmp_path / "bf16", dtype="BF16")
    ckpt = quantize_checkpoint(tmp_path / "bf16", tmp_path / "q", QuantSpec(8, 64))
    header = weights.read_header(ckpt / "model.safetensors")
    assert header["model.h.1.attn.c_attn.scales"][0] == header["model.ln_f.weight"][0] == "BF16"
    assert folder.open_checkpoint(ckpt, quantized=True)[1] == "BF16"
    x = windows(trained[1], rows=2)[:, :-1]
    assert mlx_ckpt.load_model(ckpt).ln_f.weight.dtype == mx.bfloat16
    # compared in float32: bf16 arithmetic rounds differently in every implementation
    lm_model, _ = load(str(ckpt))
    lm_model.set_dtype(mx.float32)
    lm32 = np.array(lm_model(mx.array(x.numpy())))
    mlx32 = np.array(mlx_ckpt.load_model(ckpt, mx.float32)(mx.array(x.numpy())))
    with torch.no_grad():
        torch32 = torch_ckpt.load_model(ckpt, dtype=torch.float32)(x).numpy()
    assert np.abs(mlx32 - torch32).max() < 1e-4 and np.abs(mlx32 - lm32).max() < 1e-4


def test_bf16_conversion_rounds_like_mlx():
    x = np.random.default_rng(1).normal(size=1000).astype(np.float32) * 10.0 ** np.arange(-5, 5).repeat(100)
    raw = from_float32(x, "BF16")
    theirs = np.array(mx.array(x).astype(mx.bfloat16).astype(mx.float32))
    np.testing.assert_array_equal(to_float32("BF16", x.shape, raw), theirs)


# --- one file, three readers --------------------------------------------------------------------------


def test_the_file_is_mlx_lm_layout(quantized, trained):
    ckpt = quantized[(4, 64)]
    hf = json.loads((ckpt / "config.json").read_text())
    assert hf["quantization"] == hf["quantization_config"] == {"group_size": 64, "bits": 4}
    header = weights.read_header(ckpt / "model.safetensors")
    assert all(name.startswith("model.") for name in header)
    d = hf["n_embd"]
    assert header["model.h.0.mlp.c_fc.weight"] == ("U32", (4 * d, d * 4 // 32))  # Linear layout [out, in]
    assert header["model.h.0.mlp.c_fc.scales"] == ("F32", (4 * d, d // 64))
    assert header["model.wte.weight"] == ("U32", (hf["vocab_size"], d // 8))
    assert header["model.ln_f.weight"] == ("F32", (d,))
    assert (ckpt / "tokenizer.json").is_file()
    float_size = (trained[0] / "model.safetensors").stat().st_size
    assert (ckpt / "model.safetensors").stat().st_size < float_size / 4


@pytest.mark.parametrize("key", [(8, 64), (4, 64), (4, 32)])
def test_both_twins_and_mlx_lm_give_the_same_greedy_tokens(quantized, trained, key):
    from mlx_lm import load
    from mlx_lm.generate import generate_step
    from mlx_lm.sample_utils import make_sampler

    ckpt, (_, val) = quantized[key], trained
    lm_model, _ = load(str(ckpt))
    assert type(lm_model.model.wte).__name__ == "QuantizedEmbedding"
    mlx_model, torch_model = mlx_ckpt.load_model(ckpt), torch_ckpt.load_model(ckpt)
    cfg = SamplingConfig(temperature=0.0, max_new_tokens=12)
    prompts = [val[i : i + 8].tolist() for i in range(0, 800, 100)]  # held-out, validation-like
    ours_mlx = mlx_gen.generate_tokens(mlx_model, prompts, cfg)
    ours_torch = torch_gen.generate_tokens(torch_model, prompts, cfg)
    theirs = []
    for p in prompts:
        steps = generate_step(mx.array(p), lm_model, max_tokens=12, sampler=make_sampler(temp=0.0))
        theirs.append([int(t) for t, _ in steps])
    assert ours_mlx == ours_torch == theirs
    assert sum(len(set(t)) for t in theirs) > 8 * 4  # real continuations, not one repeated token


def test_twins_compute_the_same_logits(quantized, trained):
    ckpt, batch = quantized[(4, 32)], windows(trained[1], rows=4)[:, :-1]
    a = np.array(mlx_ckpt.load_model(ckpt)(mx.array(batch.numpy())))
    with torch.no_grad():
        b = torch_ckpt.load_model(ckpt)(batch).numpy()
    assert np.abs(a - b).max() < 1e-4


@pytest.mark.parametrize("bits", [8, 4])
def test_validation_perplexity_rises_within_bounds(trained, quantized, bits):
    ckpt, val = trained
    base = val_loss_torch(ckpt, val)
    assert base < 0.5 * math.log(320)  # the model did learn: quantization has something to spoil
    for gs in (32, 64):
        for name, loss in (("torch", val_loss_torch), ("mlx", val_loss_mlx)):
            q = loss(quantized[(bits, gs)], val)
            rise = math.exp(q - base) - 1
            assert rise <= MAX_RISE[bits], (
                f"{name} {bits}-bit g{gs}: ppl {math.exp(base):.4f} -> {math.exp(q):.4f}"
            )


def test_jai_sample_runs_a_quantized_checkpoint(capsys, quantized):
    ckpt = quantized[(4, 64)]
    outs = {}
    for backend in ("torch", "mlx"):
        code = cli.main(["sample", str(ckpt), "--backend", backend, "--prompt", "We are hiring",
                         "--temperature", "0", "--max-new-tokens", "16"])  # fmt: skip
        outs[backend], err = capsys.readouterr()
        assert code == 0, err
    assert outs["torch"] == outs["mlx"] and len(outs["mlx"].strip()) > 0


def test_jai_serve_loads_a_quantized_checkpoint_in_both_twins(quantized, trained):
    from jai.inference.twins import load_generate_fn

    cfg = SamplingConfig(temperature=0.0, max_new_tokens=10)
    prompt = trained[1][:8].tolist()
    outs = [
        load_generate_fn(quantized[(8, 64)], backend, "cpu")[0](prompt, cfg) for backend in ("mlx", "torch")
    ]
    assert outs[0] == outs[1] and len(outs[0]) == 10


# --- the command and its errors -----------------------------------------------------------------------


def quantize(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["quantize", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_writes_a_checkpoint_and_says_how_much_smaller(capsys, trained, tmp_path):
    code, out, err = quantize(capsys, str(trained[0]), str(tmp_path / "q8"), "--bits", "8")
    assert code == 0, err
    assert "8-bit, group size 64" in out and "smaller" in out
    assert json.loads((tmp_path / "q8" / "config.json").read_text())["quantization"]["bits"] == 8


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--bits", "3"], "--bits must be one of 4, 8, got 3"),
        (["--bits", "4", "--group-size", "48"], "--group-size must be one of 32, 64, 128, got 48"),
    ],
)
def test_bad_flags_are_named(capsys, trained, tmp_path, flags, named):
    code, _, err = quantize(capsys, str(trained[0]), str(tmp_path / "q"), *flags)
    assert code == 2 and named in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "q").exists()


def test_a_group_size_that_does_not_divide_the_width(capsys, tmp_path):
    torch_ckpt.save_model(
        GPT(GPTConfig(vocab_size=64, block_size=8, n_layer=1, n_head=3, n_embd=48)), tmp_path / "f"
    )
    code, _, err = quantize(
        capsys, str(tmp_path / "f"), str(tmp_path / "q"), "--bits", "4", "--group-size", "32"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "group size 32 does not divide the width 48 of wte" in err
    assert not (tmp_path / "q").exists()


def test_quantizing_a_quantized_checkpoint_is_refused(capsys, quantized, tmp_path):
    code, _, err = quantize(capsys, str(quantized[(8, 64)]), str(tmp_path / "qq"), "--bits", "4")
    assert (
        code == 2 and "already quantized (8-bit, group size 64)" in err and len(err.strip().splitlines()) == 1
    )


def test_an_existing_output_directory_is_refused(capsys, trained, tmp_path):
    (tmp_path / "q").mkdir()
    code, _, err = quantize(capsys, str(trained[0]), str(tmp_path / "q"), "--bits", "8")
    assert code == 2 and "already exists" in err


def test_training_and_converting_refuse_a_quantized_checkpoint(quantized):
    with pytest.raises(
        QuantError, match="a quantized checkpoint .4-bit, group size 64.; this needs the float"
    ):
        folder.open_checkpoint(quantized[(4, 64)])
    with pytest.raises(QuantError):
        torch_ckpt.load_tensors(quantized[(4, 64)])


def test_a_damaged_quantized_file_names_the_tensor(quantized, tmp_path):
    import shutil

    from safetensors.numpy import load_file, save_file

    bad = tmp_path / "bad"
    shutil.copytree(quantized[(8, 64)], bad)
    tensors = load_file(bad / "model.safetensors")
    tensors["model.h.0.attn.c_proj.scales"] = tensors["model.h.0.attn.c_proj.scales"][:, :0]
    save_file(tensors, bad / "model.safetensors")
    with pytest.raises(QuantError, match="tensor 'model.h.0.attn.c_proj.scales': expected shape"):
        torch_ckpt.load_model(bad)
    with pytest.raises(QuantError, match="model.h.0.attn.c_proj.scales"):
        mlx_ckpt.load_model(bad)
