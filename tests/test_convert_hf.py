"""Hugging Face GPT-2 -> JAI: every hub layout variant imports, and both twins then compute HF's logits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import torch
from safetensors.torch import load_file as torch_load_st
from safetensors.torch import save_file as torch_save_st
from transformers import GPT2Config, GPT2LMHeadModel

from jai.checkpoint import folder, hf_files, weights
from jai.checkpoint.weights import CheckpointError
from jai.config import ConfigError
from jai.convert import ConversionError
from jai.convert import hf as chf
from jai.tokenizer import Tokenizer
from jai_mlx import checkpoint as mlx_ckpt
from jai_torch import checkpoint as torch_ckpt

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [
    dict(vocab_size=97, n_positions=16, n_layer=1, n_head=2, n_embd=64),
    dict(vocab_size=101, n_positions=24, n_layer=2, n_head=3, n_embd=48),
]


def hf_model(shape: dict, seed: int = 0, dtype: torch.dtype = torch.float32) -> GPT2LMHeadModel:
    """A tiny GPT-2 whose every weight (biases and LayerNorms too) is random, so no mix-up hides."""
    cfg = GPT2Config(
        **shape,
        activation_function="gelu_new",
        n_inner=None,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape) * 0.1 + (1.0 if "ln_" in name and name.endswith("weight") else 0.0))
    return model.to(dtype).eval()


def hf_weights(model: GPT2LMHeadModel) -> dict[str, torch.Tensor]:
    """HF's own tensors under JAI names (no prefix), Conv1D layout as HF stores it."""
    return {k.removeprefix("transformer."): v.detach().clone() for k, v in model.state_dict().items()}


def hf_logits(model: GPT2LMHeadModel, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).logits.float().numpy()


def write_config(model: GPT2LMHeadModel, d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(model.config.to_json_string())


def tokens(vocab: int, block: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, vocab, (2, block))


def assert_twins_match_hf(ckpt: Path, model: GPT2LMHeadModel) -> None:
    cfg = model.config
    x = tokens(cfg.vocab_size, cfg.n_positions)
    expected = hf_logits(model, x)
    tm = torch_ckpt.load_model(ckpt).eval()
    with torch.no_grad():
        from_torch = tm(torch.from_numpy(x)).numpy()
    mm = mlx_ckpt.load_model(ckpt)
    mm.eval()
    from_mlx = np.array(mm(mx.array(x)))
    np.testing.assert_allclose(from_torch, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(from_mlx, expected, atol=1e-4, rtol=0)


def assert_same_tensors(ckpt: Path, expected: dict[str, torch.Tensor]) -> None:
    """The checkpoint holds exactly HF's weights, bit for bit, in the stored (Conv1D) layout."""
    found = torch_load_st(ckpt / weights.WEIGHTS_FILE)
    expected = {k: v for k, v in expected.items() if k != "lm_head.weight"}  # tied: never stored
    assert set(found) == set(expected)
    for name, t in expected.items():
        assert found[name].dtype == t.dtype, name
        assert torch.equal(found[name].view(torch.uint8), t.contiguous().view(torch.uint8)), name


# ------------------------------------------------------------------------------------------ variants


def variant_save_pretrained(model, d):
    model.save_pretrained(d)


def variant_bare_names_with_buffers(model, d):
    """The old hub layout (openai-community/gpt2): no prefix, causal-mask buffers stored."""
    write_config(model, d)
    sd = hf_weights(model)
    n = model.config.n_positions
    for i in range(model.config.n_layer):
        sd[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
        sd[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    sd.pop("lm_head.weight", None)
    torch_save_st(sd, d / "model.safetensors", metadata={"format": "pt"})


def variant_prefixed_with_head_and_buffers(model, d):
    write_config(model, d)
    sd = {"transformer." + k: v for k, v in hf_weights(model).items() if k != "lm_head.weight"}
    sd["lm_head.weight"] = sd["transformer.wte.weight"].clone()  # tied: equal, stored separately
    for i in range(model.config.n_layer):
        sd[f"transformer.h.{i}.attn.bias"] = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    torch_save_st(sd, d / "model.safetensors", metadata={"format": "pt"})


def variant_compiled(model, d):
    write_config(model, d)
    sd = {"_orig_mod.transformer." + k: v for k, v in hf_weights(model).items() if k != "lm_head.weight"}
    torch_save_st(sd, d / "model.safetensors", metadata={"format": "pt"})


def variant_sharded(model, d):
    write_config(model, d)
    sd = {"transformer." + k: v for k, v in hf_weights(model).items() if k != "lm_head.weight"}
    names = sorted(sd)
    halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for fname, keys in halves.items():
        torch_save_st({k: sd[k] for k in keys}, d / fname, metadata={"format": "pt"})
    weight_map = {k: f for f, keys in halves.items() for k in keys}
    (d / chf.SAFETENSORS_INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def variant_pytorch_bin(model, d):
    write_config(model, d)
    sd = {"transformer." + k: v for k, v in hf_weights(model).items()}  # lm_head.weight included, tied
    sd["lm_head.weight"] = sd.pop("transformer.lm_head.weight")
    n = model.config.n_positions
    sd["transformer.h.0.attn.bias"] = torch.tril(torch.ones(n, n, dtype=torch.uint8)).view(1, 1, n, n)
    torch.save(sd, d / chf.TORCH_BIN)


VARIANTS = [
    variant_save_pretrained,
    variant_bare_names_with_buffers,
    variant_prefixed_with_head_and_buffers,
    variant_compiled,
    variant_sharded,
    variant_pytorch_bin,
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.__name__.removeprefix("variant_"))
@pytest.mark.parametrize("shape", SHAPES, ids=["tiny", "two-layer"])
def test_import_then_both_twins_match_hf_logits(tmp_path, variant, shape):
    model = hf_model(shape, seed=1)
    variant(model, tmp_path / "hf")
    done = chf.import_hf(tmp_path / "hf", tmp_path / "jai")
    assert done.dtype == "F32" and done.config.n_layer == shape["n_layer"]
    assert folder.open_checkpoint(tmp_path / "jai") == (done.config, "F32")
    assert_same_tensors(tmp_path / "jai", hf_weights(model))
    assert_twins_match_hf(tmp_path / "jai", model)
    if variant is variant_pytorch_bin:
        assert any("pytorch_model.bin" in n and "weights_only=True" in n for n in done.notes)


def test_save_pretrained_layout_is_what_we_think(tmp_path):
    """transformers 5.x writes `transformer.`-prefixed keys and drops the tied head; older ones differ."""
    hf_model(SHAPES[0]).save_pretrained(tmp_path)
    names = chf.safetensors_names(tmp_path / "model.safetensors")
    assert "lm_head.weight" not in names and any(n.startswith("transformer.") for n in names)


def test_transformers_opens_the_imported_checkpoint(tmp_path):
    model = hf_model(SHAPES[1], seed=2)
    variant_bare_names_with_buffers(model, tmp_path / "hf")
    chf.import_hf(tmp_path / "hf", tmp_path / "jai")
    again = GPT2LMHeadModel.from_pretrained(tmp_path / "jai").eval()
    x = tokens(101, 24)
    np.testing.assert_array_equal(hf_logits(again, x), hf_logits(model, x))


def test_bf16_is_kept_bit_for_bit(tmp_path):
    model = hf_model(SHAPES[0], seed=3, dtype=torch.bfloat16)
    model.save_pretrained(tmp_path / "hf")
    assert weights.read_header(tmp_path / "hf" / "model.safetensors")["transformer.wte.weight"][0] == "BF16"
    done = chf.import_hf(tmp_path / "hf", tmp_path / "jai")
    assert done.dtype == "BF16"
    assert_same_tensors(tmp_path / "jai", hf_weights(model))
    # both twins read it back as bf16, and in fp32 they compute what HF computes in fp32
    assert mlx_ckpt.load_model(tmp_path / "jai").wte.weight.dtype == mx.bfloat16
    assert torch_ckpt.load_model(tmp_path / "jai").wte.weight.dtype == torch.bfloat16
    chf.import_hf(tmp_path / "hf", tmp_path / "f32", dtype="float32")
    assert_twins_match_hf(tmp_path / "f32", model.float())


@pytest.mark.parametrize(
    ("source", "target"), [("F32", "BF16"), ("F32", "F16"), ("BF16", "F16"), ("F16", "BF16")]
)
def test_dtype_option_casts_like_torch(tmp_path, source, target):
    names = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
    model = hf_model(SHAPES[0], seed=4, dtype=names[source])
    model.save_pretrained(tmp_path / "hf")
    done = chf.import_hf(tmp_path / "hf", tmp_path / "jai", dtype=target.lower())
    assert done.dtype == target and folder.open_checkpoint(tmp_path / "jai")[1] == target
    expected = {k: v.to(names[target]) for k, v in hf_weights(model).items()}
    assert_same_tensors(tmp_path / "jai", expected)


def test_bf16_rounding_matches_torch_on_edge_cases():
    rng = np.random.default_rng(0)
    f32 = np.concatenate(
        [
            rng.standard_normal(10_000).astype(np.float32) * 10.0 ** rng.integers(-40, 38, 10_000),
            np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 3.4028235e38, -3.4028235e38], np.float32),
            np.array([1e-45, 1e-40, -1e-39, 1.17549435e-38], np.float32),  # subnormals, smallest normal
            # exact ties (lower 16 bits 0x8000) with even and odd upper halves, and one past each
            np.array([0x3F808000, 0x3F818000, 0x3F808001, 0x3F817FFF, 0x7F7F8000], np.uint32).view(
                np.float32
            ),
        ]
    )
    ours = chf.f32_to_bf16_bits(f32)
    theirs = torch.from_numpy(f32).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    nan = np.isnan(f32)
    np.testing.assert_array_equal(ours[~nan], theirs[~nan])
    assert np.all(ours[nan] == 0x7FC0)  # the canonical quiet NaN (torch's CPU kernel writes 0xFFFF)
    back = chf.bf16_bits_to_f32(theirs)  # widening is exact: the same bits as torch's, NaNs included
    expected = torch.from_numpy(theirs.view(np.int16)).view(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(back.view(np.uint32), expected.view(np.uint32))


def test_written_file_reads_everywhere(tmp_path):
    """Our own safetensors writer: safetensors (torch, numpy), MLX and the contract all read it."""
    t = {
        "a": chf.Tensor("F32", np.arange(6, dtype=np.float32).reshape(2, 3)),
        "b": chf.Tensor("BF16", chf.f32_to_bf16_bits(np.array([1.5, -2.25, 3.0], np.float32))),
        "c": chf.Tensor("F16", np.array([0.5], np.float16)),
    }
    path = tmp_path / "x.safetensors"
    chf.write_safetensors(path, t, {"format": "pt"})
    loaded = torch_load_st(path)
    assert loaded["b"].dtype == torch.bfloat16 and loaded["b"].tolist() == [1.5, -2.25, 3.0]
    assert torch.equal(loaded["a"], torch.arange(6.0).reshape(2, 3)) and loaded["c"].item() == 0.5
    m = mx.load(str(path))
    assert m["b"].dtype == mx.bfloat16 and m["b"].astype(mx.float32).tolist() == [1.5, -2.25, 3.0]
    assert weights.read_header(path) == {"a": ("F32", (2, 3)), "b": ("BF16", (3,)), "c": ("F16", (1,))}


def small_tokenizer(path: Path, extra: str = "") -> Path:
    lines = ["We are hiring a backend engineer in Seoul.", "백엔드 개발자를 모집합니다." + extra] * 3
    Tokenizer.train(lines, vocab_size=300, min_frequency=1, show_progress=False).save(path)
    return path


def test_tokenizer_is_copied_with_its_hugging_face_files(tmp_path):
    model = hf_model(SHAPES[0])
    model.save_pretrained(tmp_path / "hf")
    ours = small_tokenizer(tmp_path / "hf" / "tokenizer.json").read_text()
    chf.import_hf(tmp_path / "hf", tmp_path / "jai")
    assert (tmp_path / "jai" / "tokenizer.json").read_text() == ours
    assert set(hf_files.FILES) <= {p.name for p in (tmp_path / "jai").iterdir()}
    other = small_tokenizer(tmp_path / "other.json", extra=" Python").read_text()
    assert other != ours
    chf.import_hf(tmp_path / "hf", tmp_path / "jai", tokenizer=tmp_path / "other.json", overwrite=True)
    assert (tmp_path / "jai" / "tokenizer.json").read_text() == other
    (tmp_path / "bad.json").write_text('{"model": "ours"}')
    with pytest.raises(CheckpointError, match=r"bad\.json: not a valid tokenizer\.json"):
        chf.import_hf(tmp_path / "hf", tmp_path / "jai", tokenizer=tmp_path / "bad.json", overwrite=True)
    assert (tmp_path / "jai" / "tokenizer.json").read_text() == other  # the old checkpoint is untouched


# ------------------------------------------------------------------------------------------- refusals


def test_untied_head_is_refused(tmp_path):
    model = hf_model(SHAPES[0])
    variant_prefixed_with_head_and_buffers(model, tmp_path / "hf")
    path = tmp_path / "hf" / "model.safetensors"
    sd = torch_load_st(path)
    sd["lm_head.weight"] = sd["lm_head.weight"] + 1e-3
    torch_save_st(sd, path, metadata={"format": "pt"})
    with pytest.raises(ConversionError, match=r"lm_head\.weight differs from wte\.weight.*untied head"):
        chf.import_hf(tmp_path / "hf", tmp_path / "jai")
    assert not (tmp_path / "jai").exists()


def test_untied_config_and_other_activation_are_refused(tmp_path):
    model = hf_model(SHAPES[0])
    model.save_pretrained(tmp_path / "hf")
    hf = json.loads((tmp_path / "hf" / "config.json").read_text())
    for change, message in (
        ({"tie_word_embeddings": False}, "tie"),
        ({"activation_function": "relu"}, "gelu_new"),
    ):
        (tmp_path / "hf" / "config.json").write_text(json.dumps(hf | change))
        with pytest.raises(ConfigError, match=message):
            chf.import_hf(tmp_path / "hf", tmp_path / "jai")


def test_wrong_shape_and_extra_tensor_are_named(tmp_path):
    model = hf_model(SHAPES[0])
    variant_bare_names_with_buffers(model, tmp_path / "hf")
    path = tmp_path / "hf" / "model.safetensors"
    sd = torch_load_st(path)
    sd["h.0.mlp.c_fc.weight"] = sd["h.0.mlp.c_fc.weight"].t().contiguous()  # Linear layout: wrong
    torch_save_st(sd, path, metadata={"format": "pt"})
    with pytest.raises(
        CheckpointError, match=r"'h\.0\.mlp\.c_fc\.weight': expected shape \[64, 256\].*\[256, 64\]"
    ):
        chf.import_hf(tmp_path / "hf", tmp_path / "jai")
    sd["h.0.mlp.c_fc.weight"] = sd["h.0.mlp.c_fc.weight"].t().contiguous()
    sd["multiple_choice_head.summary.weight"] = torch.zeros(1, 64)
    torch_save_st(sd, path, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="unexpected tensor 'multiple_choice_head"):
        chf.import_hf(tmp_path / "hf", tmp_path / "jai")


def test_existing_output_needs_overwrite_and_must_be_a_checkpoint(tmp_path):
    model = hf_model(SHAPES[0])
    model.save_pretrained(tmp_path / "hf")
    (tmp_path / "jai").mkdir()
    (tmp_path / "jai" / "notes.txt").write_text("mine")
    with pytest.raises(ConversionError, match="already exists"):
        chf.import_hf(tmp_path / "hf", tmp_path / "jai")
    with pytest.raises(ConversionError, match="holds 'notes.txt', which is not part of a JAI checkpoint"):
        chf.import_hf(tmp_path / "hf", tmp_path / "jai", overwrite=True)
    assert (tmp_path / "jai" / "notes.txt").read_text() == "mine"
    with pytest.raises(ConversionError, match="generation_config.json"):  # HF's extra files are kept
        chf.import_hf(tmp_path / "hf", tmp_path / "hf", overwrite=True)
    # in place: a JAI checkpoint may replace itself (a dtype change)
    chf.import_hf(tmp_path / "hf", tmp_path / "jai2")
    chf.import_hf(tmp_path / "jai2", tmp_path / "jai2", dtype="bf16", overwrite=True)
    assert folder.open_checkpoint(tmp_path / "jai2")[1] == "BF16"
    expected = {k: v.to(torch.bfloat16) for k, v in hf_weights(model).items()}
    assert_same_tensors(tmp_path / "jai2", expected)


def test_missing_weights_and_bad_dtype(tmp_path):
    model = hf_model(SHAPES[0])
    write_config(model, tmp_path / "hf")
    with pytest.raises(ConversionError, match="no model.safetensors"):
        chf.import_hf(tmp_path / "hf", tmp_path / "jai")
    with pytest.raises(ConversionError, match="unknown dtype 'int8'"):
        chf.import_hf(tmp_path / "hf", tmp_path / "jai", dtype="int8")
    with pytest.raises(FileNotFoundError):
        chf.import_hf(tmp_path / "nowhere", tmp_path / "jai")


class Payload:
    pass


def test_unsafe_pytorch_bin_is_refused(tmp_path):
    model = hf_model(SHAPES[0])
    write_config(model, tmp_path / "hf")
    torch.save(
        {"transformer.wte.weight": torch.zeros(97, 64), "extra": Payload()}, tmp_path / "hf" / chf.TORCH_BIN
    )
    with pytest.raises(
        ConversionError, match=r"pytorch_model\.bin: contains objects that cannot be loaded safely"
    ):
        chf.import_hf(tmp_path / "hf", tmp_path / "jai")


def run_without_torch(code: str) -> subprocess.CompletedProcess:
    code = "import sys; sys.modules['torch'] = None\n" + code
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_safetensors_import_needs_no_torch(tmp_path):
    model = hf_model(SHAPES[0], dtype=torch.bfloat16)
    model.save_pretrained(tmp_path / "hf")
    src, out = str(tmp_path / "hf"), str(tmp_path / "jai")
    result = run_without_torch(
        f"from jai.convert.hf import import_hf\nprint(import_hf({src!r}, {out!r}).dtype)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "BF16"
    assert_same_tensors(tmp_path / "jai", hf_weights(model))


def test_pytorch_bin_without_torch_says_so(tmp_path):
    model = hf_model(SHAPES[0])
    variant_pytorch_bin(model, tmp_path / "hf")
    result = run_without_torch(
        "from jai.convert.hf import import_hf\n"
        f"try:\n    import_hf({str(tmp_path / 'hf')!r}, {str(tmp_path / 'jai')!r})\n"
        "except Exception as e:\n    print(type(e).__name__, e)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ConversionError") and "needs PyTorch" in result.stdout


# ------------------------------------------------------------------------------ stock configs, GELUs


def test_a_stock_small_vocabulary_config_imports_without_its_foreign_special_ids(tmp_path):
    """GPT2Config(vocab_size=5003) keeps GPT-2's bos/eos 50256: transformers loads it, and so does JAI."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(vocab_size=5003, n_positions=16, n_layer=1, n_head=2, n_embd=32)
    ).eval()
    assert model.config.bos_token_id == model.config.eos_token_id == 50256
    model.save_pretrained(tmp_path / "hf")
    done = chf.import_hf(tmp_path / "hf", tmp_path / "jai")
    assert done.config.bos_token_id is None and done.config.eos_token_id is None
    assert sum("bos_token_id=50256 lies outside the vocabulary (size 5003)" in n for n in done.notes) == 1
    assert sum("eos_token_id=50256" in n for n in done.notes) == 1
    assert_twins_match_hf(tmp_path / "jai", model)


@pytest.mark.parametrize("activation", ["gelu", "gelu_new"])
def test_either_gelu_imports_and_both_twins_run_it(tmp_path, activation):
    model = hf_model(SHAPES[1], seed=4)
    model.config.activation_function = activation
    model = GPT2LMHeadModel.from_pretrained(save(model, tmp_path / "hf")).eval()  # rebuilt with that GELU
    done = chf.import_hf(tmp_path / "hf", tmp_path / "jai")
    assert done.config.activation == activation
    assert json.loads((tmp_path / "jai" / "config.json").read_text())["activation_function"] == activation
    assert_twins_match_hf(tmp_path / "jai", model)
    # the two GELUs are told apart: the other one's logits are measurably farther from HF's
    other = "gelu_new" if activation == "gelu" else "gelu"
    hf = json.loads((tmp_path / "jai" / "config.json").read_text())
    (tmp_path / "jai" / "config.json").write_text(json.dumps(hf | {"activation_function": other}))
    x = tokens(101, 24)
    with torch.no_grad():
        wrong = torch_ckpt.load_model(tmp_path / "jai").eval()(torch.from_numpy(x)).numpy()
    assert np.abs(wrong - hf_logits(model, x)).max() > 1e-4


def save(model: GPT2LMHeadModel, d: Path) -> Path:
    model.save_pretrained(d)
    return d
