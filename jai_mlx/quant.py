"""Quantized checkpoints (jai/checkpoint/quant.py) in MLX. Twin: jai_torch/quant.py.

MLX has the layers: `nn.QuantizedLinear` and `nn.QuantizedEmbedding` hold the packed codes, scales and
biases exactly as the file stores them, multiply without ever materialising a float matrix, and the
tied head runs as `QuantizedEmbedding.as_linear`. So loading is: build the float GPT, swap its matrices
for quantized layers, and load the file's tensors by name (mlx-lm's names less their `model.` prefix).
"""

from __future__ import annotations

import os
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn

from jai.checkpoint import quant
from jai.checkpoint.quant import QuantSpec
from jai.checkpoint.weights import WEIGHTS_FILE
from jai_mlx.model import GPT


def quantize_layers(model: GPT, spec: QuantSpec) -> GPT:
    """Swap the model's matrices (jai.checkpoint.quant.quantized_layers) for quantized layers, in place."""
    layers = set(quant.quantized_layers(model.config))
    nn.quantize(
        model, group_size=spec.group_size, bits=spec.bits, class_predicate=lambda path, _: path in layers
    )
    return model


def load_model(ckpt_dir: str | os.PathLike, dtype: mx.Dtype | None = None) -> GPT:
    """A GPT with a quantized checkpoint's weights; `dtype` sets the float parts (scales, biases, norms)."""
    cfg, spec, _ = quant.inspect_quantized(ckpt_dir)
    model = quantize_layers(GPT(cfg), spec)
    tensors = mx.load(str(Path(ckpt_dir) / WEIGHTS_FILE))
    model.load_weights([(quant.jai_name(k), v) for k, v in tensors.items()], strict=True)
    if dtype is not None:
        model.set_dtype(dtype)  # floating parameters only: the packed codes stay uint32
    mx.eval(model.parameters())
    return model.eval()
