"""nanoGPT <-> JAI, checked against an independent nanoGPT forward pass written here from the raw tensors."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file as torch_load_st

from jai.checkpoint import folder, weights
from jai.config import GPTConfig
from jai.convert import ConversionError
from jai.convert import nanogpt as cn
from jai_mlx import checkpoint as mlx_ckpt
from jai_torch import checkpoint as torch_ckpt
from jai_torch import model as torch_model
from tests.conftest import TINY

TWO = GPTConfig(vocab_size=101, block_size=24, n_layer=2, n_head=3, n_embd=48)
CFGS = pytest.mark.parametrize("cfg", [TINY, TWO], ids=["tiny", "two-layer"])
LINEAR = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def nanogpt_keys(cfg: GPTConfig) -> list[str]:
    """What nanoGPT's GPT(bias=True).state_dict() holds on PyTorch >= 2.0, written out by hand."""
    keys = ["transformer.wte.weight", "transformer.wpe.weight"]
    for i in range(cfg.n_layer):
        for part in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"):
            keys += [f"transformer.h.{i}.{part}.weight", f"transformer.h.{i}.{part}.bias"]
    return [*keys, "transformer.ln_f.weight", "transformer.ln_f.bias", "lm_head.weight"]


def nanogpt_shape(key: str, cfg: GPTConfig) -> tuple[int, ...]:
    d, name = cfg.n_embd, key.split(".", 1)[1]
    if key in ("transformer.wte.weight", "lm_head.weight"):
        return (cfg.vocab_size, d)
    if key == "transformer.wpe.weight":
        return (cfg.block_size, d)
    out = {"attn.c_attn": 3 * d, "attn.c_proj": d, "mlp.c_fc": 4 * d, "mlp.c_proj": d}
    inp = {"attn.c_attn": d, "attn.c_proj": d, "mlp.c_fc": d, "mlp.c_proj": 4 * d}
    for part in out:
        if f".{part}." in key:
            return (out[part], inp[part]) if name.endswith("weight") else (out[part],)  # Linear: [out, in]
    return (d,)  # LayerNorms


def nanogpt_state(
    cfg: GPTConfig, seed: int = 0, prefix: str = "", buffers: bool = True
) -> dict[str, torch.Tensor]:
    """A nanoGPT model state dict: random everywhere, lm_head tied (the same tensor), mask buffers."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for key in nanogpt_keys(cfg)[:-1]:
        base = 1.0 if (".ln_" in key and key.endswith("weight")) else 0.0
        sd[key] = torch.randn(nanogpt_shape(key, cfg), generator=gen) * 0.1 + base
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    if buffers:  # nanoGPT without flash attention registers the causal mask
        n = cfg.block_size
        for i in range(cfg.n_layer):
            sd[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
    return {prefix + k: v for k, v in sd.items()}


def model_args(cfg: GPTConfig, **changes) -> dict:
    args = dict(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd, block_size=cfg.block_size)
    return args | dict(bias=True, vocab_size=cfg.vocab_size, dropout=0.0) | changes


def save_ckpt(path: Path, state: dict, args: dict, **extra) -> Path:
    torch.save(
        {"model": state, "model_args": args, "iter_num": 7, "best_val_loss": torch.tensor(2.5)} | extra, path
    )
    return path


def reference_logits(sd: dict[str, torch.Tensor], cfg: GPTConfig, idx: np.ndarray, gelu: str) -> np.ndarray:
    """nanoGPT's forward pass, in float64, straight from its state dict (Linear layout: y = x W^T + b)."""
    p = {k.replace("_orig_mod.", "").removeprefix("transformer."): v.double() for k, v in sd.items()}
    d, nh = cfg.n_embd, cfg.n_head
    B, T = idx.shape
    x = p["wte.weight"][torch.from_numpy(idx)] + p["wpe.weight"][:T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(cfg.n_layer):
        h = f"h.{i}."
        y = F.layer_norm(x, (d,), p[h + "ln_1.weight"], p[h + "ln_1.bias"], 1e-5)
        q, k, v = F.linear(y, p[h + "attn.c_attn.weight"], p[h + "attn.c_attn.bias"]).split(d, dim=2)
        q, k, v = (t.view(B, T, nh, d // nh).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // nh)
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, d)
        x = x + F.linear(y, p[h + "attn.c_proj.weight"], p[h + "attn.c_proj.bias"])
        y = F.layer_norm(x, (d,), p[h + "ln_2.weight"], p[h + "ln_2.bias"], 1e-5)
        y = F.gelu(F.linear(y, p[h + "mlp.c_fc.weight"], p[h + "mlp.c_fc.bias"]), approximate=gelu)
        x = x + F.linear(y, p[h + "mlp.c_proj.weight"], p[h + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (d,), p["ln_f.weight"], p["ln_f.bias"], 1e-5)
    return F.linear(x, p["lm_head.weight"]).numpy()


def twin_logits(ckpt: Path, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tm = torch_ckpt.load_model(ckpt).eval()
    with torch.no_grad():
        from_torch = tm(torch.from_numpy(idx)).double().numpy()
    mm = mlx_ckpt.load_model(ckpt)
    mm.eval()
    return from_torch, np.array(mm(mx.array(idx)).astype(mx.float32)).astype(np.float64)


def tokens(cfg: GPTConfig) -> np.ndarray:
    return np.random.default_rng(0).integers(0, cfg.vocab_size, (2, cfg.block_size))


def bits(t: torch.Tensor) -> tuple[torch.dtype, tuple[int, ...], bytes]:
    t = t.contiguous()
    return t.dtype, tuple(t.shape), t.view(torch.uint8).numpy().tobytes()


# --------------------------------------------------------------------------------------------- import


@CFGS
@pytest.mark.parametrize("prefix", ["", "_orig_mod."], ids=["plain", "compiled"])
def test_import_matches_an_independent_nanogpt_forward(tmp_path, cfg, prefix):
    sd = nanogpt_state(cfg, seed=1, prefix=prefix)
    path = save_ckpt(tmp_path / "ckpt.pt", sd, model_args(cfg))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nanoGPT's exact GELU is kept: nothing to warn about
        done = cn.import_nanogpt(path, tmp_path / "jai")
    assert done.config == cfg.replace(activation="gelu") and done.dtype == "F32"
    assert json.loads((tmp_path / "jai" / "config.json").read_text())["activation_function"] == "gelu"

    # the file holds nanoGPT's tensors, the four Linear matrices transposed (done here independently)
    found = torch_load_st(tmp_path / "jai" / weights.WEIGHTS_FILE)
    plain = {k.removeprefix(prefix): v for k, v in sd.items()}
    expected = {}
    for key in nanogpt_keys(cfg)[:-1]:  # lm_head is tied: not stored
        t = plain[key]
        expected[key.removeprefix("transformer.")] = t.t() if key.endswith(LINEAR) else t
    assert set(found) == set(expected)
    for name, t in expected.items():
        assert bits(found[name]) == bits(t), name

    # both twins and transformers compute nanoGPT's function (exact GELU) to 1e-5; the tanh form does not
    idx = tokens(cfg)
    tanh_ref = reference_logits(sd, cfg, idx, gelu="tanh")
    erf_ref = reference_logits(sd, cfg, idx, gelu="none")
    gap = np.abs(tanh_ref - erf_ref).max()
    assert gap > 1e-4  # the two GELUs are measurably different functions on these weights
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "jai").eval()
    assert hf.config.activation_function == "gelu"
    with torch.no_grad():
        from_hf = hf(torch.from_numpy(idx)).logits.double().numpy()
    for logits in (*twin_logits(tmp_path / "jai", idx), from_hf):
        np.testing.assert_allclose(logits, erf_ref, atol=1e-5, rtol=0)
        assert np.abs(logits - tanh_ref).max() > 10 * np.abs(logits - erf_ref).max()


def test_bf16_checkpoint_stays_bf16(tmp_path):
    sd = {k: v.to(torch.bfloat16) for k, v in nanogpt_state(TINY, seed=2, buffers=False).items()}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    path = save_ckpt(tmp_path / "ckpt.pt", sd, model_args(TINY))
    done = cn.import_nanogpt(path, tmp_path / "jai")
    assert done.dtype == "BF16"
    found = torch_load_st(tmp_path / "jai" / weights.WEIGHTS_FILE)
    c_attn = sd["transformer.h.0.attn.c_attn.weight"]
    assert bits(found["h.0.attn.c_attn.weight"]) == bits(c_attn.t())
    cn.import_nanogpt(path, tmp_path / "f16", dtype="fp16")
    assert folder.open_checkpoint(tmp_path / "f16")[1] == "F16"
    f16 = torch_load_st(tmp_path / "f16" / weights.WEIGHTS_FILE)["h.0.attn.c_attn.weight"]
    assert bits(f16) == bits(c_attn.t().to(torch.float16))


# --------------------------------------------------------------------------------------------- export


@pytest.fixture
def jai_ckpt(tmp_path) -> Path:
    model = torch_model.GPT(TWO, seed=5)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return torch_ckpt.save_model(model, tmp_path / "jai")


def test_export_loads_safely_with_nanogpt_keys_and_tied_head(tmp_path, jai_ckpt):
    with pytest.warns(cn.ActivationMismatchWarning, match="tanh GELU .*nanoGPT has only the exact"):
        out = cn.export_nanogpt(jai_ckpt, tmp_path / "nano" / "ckpt.pt")
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    assert set(ckpt) == {"model", "model_args", "iter_num", "best_val_loss", "config"}
    assert ckpt["model_args"] == model_args(TWO) and ckpt["iter_num"] == 0 and ckpt["config"] == {}
    sd = ckpt["model"]
    assert list(sd) == nanogpt_keys(TWO)  # exactly what nanoGPT's load_state_dict(strict=True) expects
    for key, t in sd.items():
        assert tuple(t.shape) == nanogpt_shape(key, TWO), key
    assert sd["lm_head.weight"].data_ptr() == sd["transformer.wte.weight"].data_ptr()  # tied, stored once

    # independent check: the file's tensors, the Linear ones transposed here
    stored = torch_load_st(jai_ckpt / weights.WEIGHTS_FILE)
    for name, t in stored.items():
        assert bits(sd["transformer." + name]) == bits(t.t() if name.endswith(LINEAR) else t), name

    # nanoGPT's forward (tanh GELU) on the exported dict is the JAI model's function
    idx = tokens(TWO)
    for logits in twin_logits(jai_ckpt, idx):
        np.testing.assert_allclose(logits, reference_logits(sd, TWO, idx, gelu="tanh"), atol=1e-4, rtol=0)


def test_export_then_import_gives_identical_tensors(tmp_path, jai_ckpt):
    with pytest.warns(cn.ActivationMismatchWarning):
        cn.export_nanogpt(jai_ckpt, tmp_path / "ckpt.pt")
    cn.import_nanogpt(tmp_path / "ckpt.pt", tmp_path / "back")
    before = torch_load_st(jai_ckpt / weights.WEIGHTS_FILE)
    after = torch_load_st(tmp_path / "back" / weights.WEIGHTS_FILE)
    assert set(before) == set(after)
    for name, t in before.items():
        assert bits(after[name]) == bits(t), name
    # nanoGPT runs the exact GELU, so that is what comes back
    assert weights.read_config(tmp_path / "back") == weights.read_config(jai_ckpt).replace(activation="gelu")
    # ... and a model that already uses it goes out to nanoGPT without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cn.export_nanogpt(tmp_path / "back", tmp_path / "again.pt")


def test_import_without_tokenizer_says_sample_will_refuse(tmp_path):
    path = save_ckpt(tmp_path / "ckpt.pt", nanogpt_state(TINY), model_args(TINY))
    done = cn.import_nanogpt(path, tmp_path / "jai")
    assert any("no tokenizer.json" in n and "jai sample" in n and "--tokenizer" in n for n in done.notes)


def test_export_state_dict(jai_ckpt):
    sd = cn.export_state_dict(jai_ckpt)
    assert list(sd) == nanogpt_keys(TWO) and sd["lm_head.weight"] is sd["transformer.wte.weight"]
    half = cn.export_state_dict(jai_ckpt, dtype="bf16")
    assert all(t.dtype == torch.bfloat16 for t in half.values())
    assert torch.equal(
        half["transformer.h.1.mlp.c_fc.weight"], sd["transformer.h.1.mlp.c_fc.weight"].bfloat16()
    )


def test_export_refuses_to_overwrite(tmp_path, jai_ckpt):
    (tmp_path / "ckpt.pt").write_bytes(b"precious")
    with pytest.raises(ConversionError, match="already exists"):
        cn.export_nanogpt(jai_ckpt, tmp_path / "ckpt.pt")
    assert (tmp_path / "ckpt.pt").read_bytes() == b"precious"


# ------------------------------------------------------------------------------------------- refusals


@dataclasses.dataclass
class NanoConfig:  # what a careless script might pickle next to the weights
    dataset: str = "shakespeare"


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("kind", ["config-object", "code"])
def test_unsafe_pickle_is_refused_and_never_run(tmp_path, kind):
    marker = tmp_path / "pwned"
    extra = NanoConfig() if kind == "config-object" else Evil(marker)
    path = save_ckpt(tmp_path / "ckpt.pt", nanogpt_state(TINY), model_args(TINY), config=extra)
    name = "NanoConfig" if kind == "config-object" else "mkdir"
    with pytest.raises(
        ConversionError, match=rf"ckpt\.pt: contains objects that cannot be loaded safely .*{name}"
    ):
        cn.import_nanogpt(path, tmp_path / "jai")
    assert not marker.exists() and not (tmp_path / "jai").exists()


def test_bias_false_is_refused(tmp_path):
    sd = {k: v for k, v in nanogpt_state(TINY).items() if not k.endswith(".bias")}
    path = save_ckpt(tmp_path / "ckpt.pt", sd, model_args(TINY, bias=False))
    with pytest.raises(ConversionError, match="bias=False.*always have biases"):
        cn.import_nanogpt(path, tmp_path / "jai")


def test_other_bad_inputs_are_explained(tmp_path):
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(ConversionError, match=r"text\.pt: not a .*PyTorch checkpoint"):
        cn.import_nanogpt(tmp_path / "text.pt", tmp_path / "jai")
    with pytest.raises(FileNotFoundError):
        cn.import_nanogpt(tmp_path / "missing.pt", tmp_path / "jai")
    torch.save(nanogpt_state(TINY), tmp_path / "bare.pt")
    with pytest.raises(ConversionError, match="no 'model' entry.*bare state dict"):
        cn.import_nanogpt(tmp_path / "bare.pt", tmp_path / "jai")
    torch.save({"model": nanogpt_state(TINY)}, tmp_path / "noargs.pt")
    with pytest.raises(ConversionError, match="no 'model_args'"):
        cn.import_nanogpt(tmp_path / "noargs.pt", tmp_path / "jai")
    sd = nanogpt_state(TINY)
    sd["transformer.h.0.attn.c_proj.weight"] = torch.zeros(64, 65)
    save_ckpt(tmp_path / "shape.pt", sd, model_args(TINY))
    with pytest.raises(
        ConversionError, match=r"'transformer\.h\.0\.attn\.c_proj\.weight': expected .*\[64, 64\]"
    ):
        cn.import_nanogpt(tmp_path / "shape.pt", tmp_path / "jai")
    sd = nanogpt_state(TINY)
    sd["lm_head.weight"] = sd["lm_head.weight"] * 2
    save_ckpt(tmp_path / "untied.pt", sd, model_args(TINY))
    with pytest.raises(ConversionError, match="untied head"):
        cn.import_nanogpt(tmp_path / "untied.pt", tmp_path / "jai")
    assert not (tmp_path / "jai").exists()
