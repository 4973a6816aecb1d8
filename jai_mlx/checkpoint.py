"""Save and load the shared checkpoint format (jai/checkpoint/weights.py) from MLX.
Twin: jai_torch/checkpoint.py."""

from __future__ import annotations

import os
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

from jai.checkpoint import folder, hf_files, weights
from jai.checkpoint.quant import read_spec
from jai.config import GPTConfig
from jai_mlx.model import GPT
from jai_mlx.quant import load_model as load_quantized

WRITER = "jai_mlx"
DTYPES = {"F32": mx.float32, "BF16": mx.bfloat16, "F16": mx.float16}


def to_contract(model: GPT, dtype: mx.Dtype | None = None) -> dict[str, mx.array]:
    """The model's tensors under the file's names and layout (Conv1D matrices as [in, out])."""
    out = {}
    for name, t in tree_flatten(model.parameters()):
        t = t.astype(dtype or t.dtype)
        out[name] = t.T if weights.is_conv1d(name) else t
    return out


def from_contract(tensors: dict[str, mx.array]) -> dict[str, mx.array]:
    """The inverse of `to_contract`: weights the twin's modules accept.

    The transposes are made contiguous: a transposed view would make every matmul read the weight
    with a stride (slower), and can round differently from a model built in memory.
    """
    return {name: mx.contiguous(t.T) if weights.is_conv1d(name) else t for name, t in tensors.items()}


def save_model(
    model: GPT,
    ckpt_dir: str | os.PathLike,
    dtype: str | None = None,
    tokenizer: str | os.PathLike | None = None,
) -> Path:
    """Write `ckpt_dir` atomically; `dtype` ("F32", "BF16", "F16") converts on the way out."""
    tensors = to_contract(model, DTYPES[dtype] if dtype else None)
    return hf_files.save_checkpoint(
        ckpt_dir,
        model.config,
        WRITER,
        lambda p: mx.save_safetensors(str(p), tensors, metadata=weights.METADATA),
        tokenizer,
    )


def load_tensors(ckpt_dir: str | os.PathLike) -> tuple[GPTConfig, dict[str, mx.array]]:
    """Validate a checkpoint directory, then read its tensors (file layout)."""
    cfg, _ = folder.open_checkpoint(ckpt_dir)
    return cfg, mx.load(str(Path(ckpt_dir) / weights.WEIGHTS_FILE))


def load_model(ckpt_dir: str | os.PathLike, dtype: mx.Dtype | None = None) -> GPT:
    """A GPT with the checkpoint's weights, in the file's dtype unless `dtype` is given.

    It comes back in eval mode, ready for inference: a config with dropout (HF's GPT-2 has 0.1) would
    otherwise make every forward random. Training calls `model.train()` itself.
    """
    if read_spec(ckpt_dir) is not None:  # written by `jai quantize`
        return load_quantized(ckpt_dir, dtype)
    cfg, tensors = load_tensors(ckpt_dir)
    model = GPT(cfg)
    model.load_weights(list(from_contract(tensors).items()), strict=True)
    model.set_dtype(dtype or tensors["wte.weight"].dtype)
    mx.eval(model.parameters())
    return model.eval()
