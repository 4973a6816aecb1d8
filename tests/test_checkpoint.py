"""The checkpoint format: both twins write it, read it back exactly, and explain every bad file."""

from __future__ import annotations

import json
import struct

import mlx.core as mx
import numpy as np
import pytest
import torch
from mlx.utils import tree_flatten
from safetensors.numpy import load_file as np_load
from safetensors.numpy import save_file as np_save

from jai.checkpoint import folder, weights
from jai.checkpoint.weights import CheckpointError
from jai.config import ConfigError, GPTConfig
from jai_mlx import checkpoint as mlx_ckpt
from jai_mlx import model as mlx_model
from jai_torch import checkpoint as torch_ckpt
from jai_torch import model as torch_model
from tests.conftest import ODD, TINY


@pytest.fixture
def ckpt(tmp_path):
    path = tmp_path / "model"
    torch_ckpt.save_model(torch_model.GPT(TINY, seed=3), path)
    return path


def rewrite_tensors(ckpt, change) -> None:
    """Load the safetensors file as numpy, let `change` edit the dict, write it back."""
    path = ckpt / weights.WEIGHTS_FILE
    tensors = np_load(path)
    change(tensors)
    np_save(tensors, path, metadata=weights.METADATA)


def test_directory_holds_gpt2_hub_layout(ckpt):
    hf = json.loads((ckpt / "config.json").read_text())
    assert hf["model_type"] == "gpt2" and hf["n_ctx"] == hf["n_positions"] == TINY.block_size
    assert hf["activation_function"] == "gelu_new" and hf["jai"]["writer"] == "jai_torch"
    header = weights.read_header(ckpt / weights.WEIGHTS_FILE)
    assert set(header) == set(weights.tensor_shapes(TINY))
    assert "lm_head.weight" not in header  # tied to wte
    d = TINY.n_embd
    assert header["h.0.attn.c_attn.weight"] == ("F32", (d, 3 * d))  # Conv1D: [in, out]
    assert header["h.0.mlp.c_proj.weight"] == ("F32", (4 * d, d))


@pytest.mark.parametrize("cfg", [TINY, ODD], ids=["tiny", "odd"])
def test_each_twin_reads_back_what_it_wrote(tmp_path, cfg):
    tm = torch_model.GPT(cfg, seed=1)
    torch_ckpt.save_model(tm, tmp_path / "t")
    for name, p in torch_ckpt.load_model(tmp_path / "t").state_dict().items():
        assert torch.equal(p, tm.state_dict()[name]), name
    mm = mlx_model.GPT(cfg, seed=1)
    mlx_ckpt.save_model(mm, tmp_path / "m")
    back = dict(tree_flatten(mlx_ckpt.load_model(tmp_path / "m").parameters()))
    for name, p in tree_flatten(mm.parameters()):
        assert mx.array_equal(p, back[name]).item(), name


def test_bf16_checkpoint_loads_in_both_twins(tmp_path):
    tm = torch_model.GPT(TINY, seed=2)
    torch_ckpt.save_model(tm, tmp_path / "bf16", dtype="BF16")
    assert folder.open_checkpoint(tmp_path / "bf16")[1] == "BF16"
    from_torch = torch_ckpt.load_model(tmp_path / "bf16").state_dict()
    from_mlx = dict(tree_flatten(mlx_ckpt.load_model(tmp_path / "bf16").parameters()))
    for name, p in from_torch.items():
        assert p.dtype == torch.bfloat16 and from_mlx[name].dtype == mx.bfloat16
        expected = tm.state_dict()[name].to(torch.bfloat16)
        assert torch.equal(p, expected), name
        # compare bits: bf16 cannot pass through numpy as a float
        mlx_bits = np.array(from_mlx[name].view(mx.uint16))
        assert np.array_equal(mlx_bits, p.view(torch.int16).numpy().view(np.uint16)), name


def test_init_follows_gpt2(tmp_path):
    cfg = GPTConfig(vocab_size=512, block_size=64, n_layer=4, n_head=4, n_embd=128)
    for params in (
        {k: v.detach().numpy() for k, v in torch_model.GPT(cfg).named_parameters()},
        {k: np.array(v) for k, v in tree_flatten(mlx_model.GPT(cfg).parameters())},
    ):
        assert abs(params["wte.weight"].std() - 0.02) < 1e-3
        assert abs(params["h.1.attn.c_attn.weight"].std() - 0.02) < 1e-3
        assert abs(params["h.1.mlp.c_proj.weight"].std() - 0.02 / np.sqrt(2 * cfg.n_layer)) < 5e-4
        assert np.all(params["h.2.ln_1.weight"] == 1) and np.all(params["h.2.mlp.c_fc.bias"] == 0)


@pytest.mark.parametrize("load", [torch_ckpt.load_model, mlx_ckpt.load_model], ids=["torch", "mlx"])
def test_truncated_file_is_named(ckpt, load):
    path = ckpt / weights.WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*truncated"):
        load(ckpt)


@pytest.mark.parametrize("load", [torch_ckpt.load_model, mlx_ckpt.load_model], ids=["torch", "mlx"])
def test_corrupt_header_is_named(ckpt, load):
    path = ckpt / weights.WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[8:20] = b"\x00garbage!!!!"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: corrupt"):
        load(ckpt)


def test_empty_and_absurd_files(ckpt):
    path = ckpt / weights.WEIGHTS_FILE
    path.write_bytes(b"abc")
    with pytest.raises(CheckpointError, match="too short"):
        folder.open_checkpoint(ckpt)
    path.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        folder.open_checkpoint(ckpt)


@pytest.mark.parametrize("load", [torch_ckpt.load_model, mlx_ckpt.load_model], ids=["torch", "mlx"])
def test_wrong_shape_names_tensor_expected_and_found(ckpt, load):
    def shrink(t):
        t["h.0.mlp.c_fc.weight"] = t["h.0.mlp.c_fc.weight"][:, :-1].copy()

    rewrite_tensors(ckpt, shrink)
    d = TINY.n_embd
    expected = rf"'h\.0\.mlp\.c_fc\.weight': expected shape \[{d}, {4 * d}\].*found \[{d}, {4 * d - 1}\]"
    with pytest.raises(CheckpointError, match=expected):
        load(ckpt)


def test_missing_unexpected_and_dtype_mix(ckpt):
    rewrite_tensors(ckpt, lambda t: t.pop("ln_f.bias"))
    with pytest.raises(CheckpointError, match="missing tensor 'ln_f.bias'"):
        folder.open_checkpoint(ckpt)

    rewrite_tensors(ckpt, lambda t: t.update({"ln_f.bias": np.zeros(TINY.n_embd, np.float32)}))
    rewrite_tensors(ckpt, lambda t: t.update({"lm_head.weight": t["wte.weight"]}))
    with pytest.raises(CheckpointError, match="unexpected tensor 'lm_head.weight'.*tied"):
        folder.open_checkpoint(ckpt)

    def mix(t):
        t.pop("lm_head.weight")
        t["ln_f.weight"] = t["ln_f.weight"].astype(np.float16)

    rewrite_tensors(ckpt, mix)
    with pytest.raises(CheckpointError, match="'ln_f.weight': dtype F16, expected F32"):
        folder.open_checkpoint(ckpt)


def test_config_that_disagrees_with_tensors(ckpt):
    hf = json.loads((ckpt / "config.json").read_text())
    hf["n_embd"] = 2 * TINY.n_embd
    (ckpt / "config.json").write_text(json.dumps(hf))
    with pytest.raises(CheckpointError, match=r"'wte\.weight': expected shape \[97, 128\].*found \[97, 64\]"):
        torch_ckpt.load_model(ckpt)


def test_bad_config_files(ckpt):
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: not valid JSON"):
        folder.open_checkpoint(ckpt)
    (ckpt / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json: no such file"):
        folder.open_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="not a directory"):
        folder.open_checkpoint(ckpt / "nowhere")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": "llama"}, "model_type must be 'gpt2'"),
        ({"activation_function": "relu"}, "activation_function must be one of 'gelu_new', 'gelu'"),
        ({"n_inner": 7}, "n_inner must be 4 \\* n_embd"),
        ({"n_ctx": 99}, "n_ctx \\(99\\) disagrees with n_positions"),
        ({"n_head": 5}, "divisible by n_head"),
        ({"tie_word_embeddings": False}, "tie_word_embeddings is false"),
        ({"eos_token_id": 1000}, "outside the vocabulary"),
    ],
)
def test_config_refuses_what_the_twins_would_compute_differently(change, message):
    hf = TINY.to_hf("test") | change
    with pytest.raises(ConfigError, match=message):
        GPTConfig.from_hf(hf)


def test_config_round_trip():
    cfg = GPTConfig(
        vocab_size=300, block_size=40, n_layer=2, n_head=4, n_embd=32, bos_token_id=2, eos_token_id=3
    )
    assert GPTConfig.from_hf(cfg.to_hf("test")) == cfg


def test_crash_while_saving_keeps_the_old_checkpoint(ckpt, monkeypatch):
    before = (ckpt / weights.WEIGHTS_FILE).read_bytes()

    def explode(tensors, path, metadata=None):
        path.write_bytes(b"half a file")
        raise KeyboardInterrupt  # what a user's Ctrl-C mid-save looks like

    monkeypatch.setattr(torch_ckpt, "save_file", explode)
    with pytest.raises(KeyboardInterrupt):
        torch_ckpt.save_model(torch_model.GPT(TINY, seed=9), ckpt)
    assert (ckpt / weights.WEIGHTS_FILE).read_bytes() == before
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["model"]  # no temp dirs left behind
    torch_ckpt.load_model(ckpt)
