"""`jai convert from-mlx-lm`: what the real mlx-lm saves (convert, quantize) comes back into JAI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file as torch_load_st

from jai import cli as jai_cli
from jai.checkpoint import folder, weights
from jai.config import GPTConfig
from jai.convert import ConversionError, mlxlm
from jai.convert import hf as chf
from jai.tokenizer import Tokenizer
from jai_torch import checkpoint as torch_ckpt
from jai_torch.model import GPT

mx = pytest.importorskip("mlx.core")
mlx_lm = pytest.importorskip("mlx_lm")
from mlx_lm import convert as mlx_convert  # noqa: E402

LINES = [
    "백엔드 개발자를 모집합니다. 자격 요건: Python 3년 이상.",
    "We are hiring a backend engineer in Seoul.",
] * 3


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A JAI checkpoint with random (unit-scale) weights and a tokenizer, as `jai train` saves one."""
    d = tmp_path_factory.mktemp("mlxlm")
    tok = Tokenizer.train(LINES, vocab_size=300, min_frequency=1, show_progress=False)
    tok.save(d / "tokenizer.json")
    ids = dict(bos_token_id=tok.bos_id, eos_token_id=tok.eos_id, pad_token_id=tok.pad_id)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=40, n_layer=2, n_head=2, n_embd=64, **ids)
    model = GPT(cfg, seed=1)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return torch_ckpt.save_model(model, d / "ckpt", tokenizer=d / "tokenizer.json")


def tokens(cfg: GPTConfig) -> np.ndarray:
    return np.random.default_rng(0).integers(0, cfg.vocab_size, (2, cfg.block_size))


def torch_logits(ckpt: Path, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch_ckpt.load_model(ckpt).eval()(torch.from_numpy(x)).numpy()


def mlx_lm_logits(path: Path, x: np.ndarray) -> np.ndarray:
    model, _ = mlx_lm.load(str(path))
    return np.array(model(mx.array(x)).astype(mx.float32))


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_dequantize_is_mlx_dequantize(bits, dtype):
    w = mx.random.normal((6, 128), key=mx.random.key(bits)).astype(getattr(mx, dtype))
    q, scales, biases = mx.quantize(w, group_size=32, bits=bits)
    expected = np.array(mx.dequantize(q, scales, biases, group_size=32, bits=bits).astype(mx.float32))

    def tensor(a) -> chf.Tensor:
        if a.dtype == mx.bfloat16:
            return chf.Tensor("BF16", np.array(a.view(mx.uint16)))
        return chf.Tensor({mx.float32: "F32", mx.float16: "F16", mx.uint32: "U32"}[a.dtype], np.array(a))

    ours = mlxlm.dequantize(tensor(q), tensor(scales), tensor(biases), bits, 32)
    # MLX computes scale * q + bias in the scales' dtype; we do it in float32
    tol = {"float32": 1e-6, "float16": 2e-3, "bfloat16": 2e-2}[dtype]
    np.testing.assert_allclose(ours, expected, atol=tol * np.abs(expected).max(), rtol=0)


@pytest.mark.parametrize("dtype", [None, "bfloat16"])
def test_a_plain_mlx_lm_save_comes_back_bit_for_bit(tmp_path, ckpt, dtype):
    kwargs = {"dtype": dtype} if dtype else {}
    mlx_convert(str(ckpt), mlx_path=str(tmp_path / "mlx"), **kwargs)
    saved = json.loads((tmp_path / "mlx" / "model.safetensors.index.json").read_text())["weight_map"]
    assert all(k.startswith("model.") for k in saved)  # mlx-lm's own layout, not the hub's
    done = mlxlm.import_mlx_lm(tmp_path / "mlx", tmp_path / "back")
    assert done.config == weights.read_config(ckpt)
    before = torch_load_st(ckpt / weights.WEIGHTS_FILE)
    after = torch_load_st(tmp_path / "back" / weights.WEIGHTS_FILE)
    assert set(before) == set(after)
    for name, t in before.items():
        assert torch.equal(after[name], t.bfloat16() if dtype else t), name
    # transformers re-saves tokenizer.json on mlx-lm's way out (a no-op post-processor): same tokens
    back, original = (Tokenizer.load(d / "tokenizer.json") for d in (tmp_path / "back", ckpt))
    assert back.encode_batch(LINES) == original.encode_batch(LINES) and back.vocab_size == original.vocab_size
    assert (tmp_path / "back" / "tokenizer_config.json").is_file()


@pytest.mark.parametrize(("bits", "group_size"), [(4, 32), (8, 64)])
def test_a_quantized_mlx_lm_model_comes_back_dequantized(tmp_path, ckpt, bits, group_size):
    mlx_convert(str(ckpt), mlx_path=str(tmp_path / "q"), quantize=True, q_bits=bits, q_group_size=group_size)
    config = json.loads((tmp_path / "q" / "config.json").read_text())
    assert config["quantization"]["bits"] == bits
    done = mlxlm.import_mlx_lm(tmp_path / "q", tmp_path / "back")
    assert done.dtype == "F32" and any(f"{bits}-bit, groups of {group_size}" in n for n in done.notes)
    folder.open_checkpoint(tmp_path / "back")
    cfg = done.config
    x = tokens(cfg)
    quantized = mlx_lm_logits(tmp_path / "q", x)  # mlx-lm's own quantized model
    ours = torch_logits(tmp_path / "back", x)
    np.testing.assert_allclose(ours, quantized, atol=2e-4, rtol=0)
    # ... which is measurably not the float model: what came back is the quantized model's function
    assert np.abs(torch_logits(ckpt, x) - quantized).max() > 10 * np.abs(ours - quantized).max()


def test_the_cli_converts_and_wrong_layouts_are_named(tmp_path, ckpt, capsys):
    mlx_convert(str(ckpt), mlx_path=str(tmp_path / "q"), quantize=True, q_bits=4, q_group_size=64)
    capsys.readouterr()  # mlx-lm's own log lines
    assert jai_cli.main(["convert", "from-mlx-lm", str(tmp_path / "q"), str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"wrote {tmp_path / 'out'} (F32, 2 layers") and "dequantized" in err
    with pytest.raises(ConversionError, match="not mlx-lm's layout.*from-hf"):
        mlxlm.import_mlx_lm(ckpt, tmp_path / "x")
    mlx_convert(str(ckpt), mlx_path=str(tmp_path / "plain"))
    with pytest.raises(ConversionError, match="from-mlx-lm"):
        chf.import_hf(tmp_path / "plain", tmp_path / "y")
    assert jai_cli.main(["convert", "from-mlx-lm", "--help"]) == 0
    text = capsys.readouterr().out
    assert "jai convert from-mlx-lm" in text and "from-nanogpt" not in text  # its own examples only


def test_mlx_lm_runs_the_tanh_gelu_whatever_config_json_says(tmp_path, ckpt):
    """mlx-lm's GPT-2 hardcodes nn.gelu_approx: an exact-GELU ("gelu") model runs slightly wrong there.

    The README says so; this test notices the day mlx-lm starts reading activation_function.
    """
    hf = json.loads((ckpt / "config.json").read_text())
    exact = tmp_path / "exact"
    exact.mkdir()
    for f in ckpt.iterdir():
        (exact / f.name).write_bytes(f.read_bytes())
    (exact / "config.json").write_text(json.dumps(hf | {"activation_function": "gelu"}))
    x = tokens(weights.read_config(ckpt))
    in_mlx_lm = mlx_lm_logits(exact, x)
    tanh, erf = torch_logits(ckpt, x), torch_logits(exact, x)
    assert np.abs(erf - tanh).max() > 1e-4  # the two GELUs differ measurably on this model
    assert np.abs(in_mlx_lm - tanh).max() < 1e-4 < np.abs(in_mlx_lm - erf).max()


def test_a_jai_quantize_checkpoint_is_mlx_lm_s_format_and_comes_back(tmp_path, ckpt):
    """`jai quantize` writes mlx-lm's layout; from-mlx-lm dequantizes it like mlx-lm's own output."""
    assert (
        jai_cli.main(["quantize", str(ckpt), str(tmp_path / "q"), "--bits", "4", "--group-size", "32"]) == 0
    )
    mlxlm.import_mlx_lm(tmp_path / "q", tmp_path / "back")
    x = tokens(weights.read_config(ckpt))
    np.testing.assert_allclose(
        torch_logits(tmp_path / "back", x), mlx_lm_logits(tmp_path / "q", x), atol=2e-4
    )
