"""Save and load the shared checkpoint format (jai/checkpoint/weights.py) from PyTorch.
Twin: jai_mlx/checkpoint.py."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from jai.checkpoint import folder, hf_files, weights
from jai.checkpoint.quant import read_spec
from jai.config import GPTConfig
from jai_torch.model import GPT
from jai_torch.quant import load_model as load_quantized

WRITER = "jai_torch"
DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def to_contract(model: GPT, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The model's tensors under the file's names and layout (Conv1D matrices as [in, out]), on the CPU."""
    out = {}
    for name, t in model.state_dict().items():
        t = t.detach().to("cpu", dtype or t.dtype)
        out[name] = t.t().contiguous() if weights.is_conv1d(name) else t.contiguous()
    return out


def from_contract(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of `to_contract`: a state dict the twin's modules accept."""
    return {name: t.t().contiguous() if weights.is_conv1d(name) else t for name, t in tensors.items()}


def save_model(
    model: GPT,
    ckpt_dir: str | os.PathLike,
    dtype: str | None = None,
    tokenizer: str | os.PathLike | None = None,
) -> Path:
    """Write `ckpt_dir` atomically; `dtype` ("F32", "BF16", "F16") converts on the way out."""
    tensors = to_contract(model, DTYPES[dtype] if dtype else None)
    return hf_files.save_checkpoint(
        ckpt_dir, model.config, WRITER, lambda p: save_file(tensors, p, metadata=weights.METADATA), tokenizer
    )


def load_tensors(ckpt_dir: str | os.PathLike) -> tuple[GPTConfig, dict[str, torch.Tensor]]:
    """Validate a checkpoint directory, then read its tensors (file layout)."""
    cfg, _ = folder.open_checkpoint(ckpt_dir)
    return cfg, load_file(Path(ckpt_dir) / weights.WEIGHTS_FILE)


def load_model(
    ckpt_dir: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> GPT:
    """A GPT with the checkpoint's weights, in the file's dtype unless `dtype` is given.

    It comes back in eval mode, ready for inference: a config with dropout (HF's GPT-2 has 0.1) would
    otherwise make every forward random. Training calls `model.train()` itself.
    """
    if read_spec(ckpt_dir) is not None:  # written by `jai quantize`
        return load_quantized(ckpt_dir, device, dtype)
    cfg, tensors = load_tensors(ckpt_dir)
    model = GPT(cfg)
    model.load_state_dict(from_contract(tensors), strict=True)
    return model.to(device=device, dtype=dtype or tensors["wte.weight"].dtype).eval()
