"""Quantized checkpoints (jai/checkpoint/quant.py) in PyTorch. Twin: jai_mlx/quant.py.

PyTorch has no affine group-quantized layers, so these dequantize on the fly: the codes stay in memory
as uint8 (a quarter of float32; unpacked from the file's uint32 words once, at load), and each forward
rebuilds the float matrix as scale * q + bias, group by group, the same sum MLX's kernels compute.
`weight` is that rebuilt matrix, so the model's code (the tied head reads `wte.weight`) is unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

from jai.checkpoint import quant
from jai.checkpoint.quant import QuantSpec
from jai.checkpoint.weights import WEIGHTS_FILE
from jai_torch.model import GPT


class _Quantized(nn.Module):
    """Codes [rows, width] uint8, scales and biases [rows, width / group_size]."""

    def __init__(self, rows: int, width: int, spec: QuantSpec) -> None:
        super().__init__()
        self.group_size = spec.group_size
        groups = width // spec.group_size
        self.register_buffer("codes", torch.zeros(rows, width, dtype=torch.uint8))
        self.register_buffer("scales", torch.zeros(rows, groups))
        self.register_buffer("biases", torch.zeros(rows, groups))

    def dequantize(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The float matrix (or only `rows` of it, for an embedding lookup)."""
        codes, scales, biases = self.codes, self.scales, self.biases
        if rows is not None:
            codes, scales, biases = codes[rows], scales[rows], biases[rows]
        g = codes.unflatten(-1, (-1, self.group_size)).to(scales.dtype)  # a fresh tensor: updated in place
        return g.mul_(scales[..., None]).add_(biases[..., None]).flatten(-2)

    @property
    def weight(self) -> torch.Tensor:
        return self.dequantize()


class QuantizedLinear(_Quantized):
    def __init__(self, linear: nn.Linear, spec: QuantSpec) -> None:
        super().__init__(linear.out_features, linear.in_features, spec)
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class QuantizedEmbedding(_Quantized):
    def __init__(self, embedding: nn.Embedding, spec: QuantSpec) -> None:
        super().__init__(embedding.num_embeddings, embedding.embedding_dim, spec)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.dequantize(idx)  # only the rows looked up


def quantize_layers(model: GPT, spec: QuantSpec) -> GPT:
    """Swap the model's matrices (jai.checkpoint.quant.quantized_layers) for quantized layers, in place."""
    for path in quant.quantized_layers(model.config):
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        layer = getattr(parent, name)
        kind = QuantizedEmbedding if isinstance(layer, nn.Embedding) else QuantizedLinear
        setattr(parent, name, kind(layer, spec))
    return model


def unpack(words: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """uint32 words [rows, n] -> uint8 codes [rows, n * 32 / bits], low bits first (as
    jai.checkpoint.quant_pack)."""
    w = words.view(torch.int32)  # torch shifts int32 (the mask below drops the sign extension)
    shifts = torch.arange(0, 32, spec.bits, dtype=torch.int32)
    return ((w[..., None] >> shifts) & (2**spec.bits - 1)).flatten(-2).to(torch.uint8)


def load_model(
    ckpt_dir: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> GPT:
    """A GPT with a quantized checkpoint's weights; `dtype` sets the float parts (scales, biases, norms)."""
    cfg, spec, _ = quant.inspect_quantized(ckpt_dir)
    model = quantize_layers(GPT(cfg), spec)
    packed = {layer + ".weight" for layer in quant.quantized_layers(cfg)}
    state = {}
    for name, t in load_file(Path(ckpt_dir) / WEIGHTS_FILE).items():
        name = quant.jai_name(name)
        if name in packed:
            name, t = name.removesuffix(".weight") + ".codes", unpack(t, spec)
        state[name] = t
    model.load_state_dict(state, strict=True)
    float_dtype = dtype or state["ln_f.weight"].dtype
    return model.to(device=device, dtype=float_dtype).eval()
