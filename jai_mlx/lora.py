"""LoRA layers in MLX. Twin: jai_torch/lora.py; the adapter's format is jai/checkpoint/lora.py's.

`apply_lora` swaps each adapted Linear for a `LoRALinear` holding the same weight and bias (frozen) and
two new trainable matrices; every other parameter is frozen, so the optimizer sees the adapter alone.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from jai.checkpoint.lora import LoraConfig, adapted_layers
from jai_mlx.model import GPT


class LoRALinear(nn.Linear):
    """y = x W^T + b + scale * (x A^T) B^T, with W and b frozen and A [r, in], B [out, r] trained."""

    def __init__(self, base: nn.Linear, rank: int, scale: float) -> None:
        n_out, n_in = base.weight.shape
        super().__init__(n_in, n_out)
        self.weight, self.bias = base.weight, base.bias
        self.lora_A = mx.zeros((rank, n_in), dtype=base.weight.dtype)
        self.lora_B = mx.zeros((n_out, rank), dtype=base.weight.dtype)
        self.scale = scale

    def __call__(self, x: mx.array) -> mx.array:
        return super().__call__(x) + self.scale * ((x @ self.lora_A.T) @ self.lora_B.T)


def apply_lora(model: GPT, lora: LoraConfig, adapter: dict[str, np.ndarray]) -> None:
    """Adapt `model` in place with the adapter's tensors (twins' names, jai/checkpoint/lora.py); freeze
    the rest."""
    model.freeze()
    for name in adapted_layers(model.config, lora):
        parent_name, _, attr = name.rpartition(".")
        parent = _submodule(model, parent_name)
        layer = LoRALinear(getattr(parent, attr), lora.rank, lora.scale)
        layer.lora_A = mx.array(adapter[f"{name}.lora_A"])
        layer.lora_B = mx.array(adapter[f"{name}.lora_B"])
        layer.freeze(keys=["weight", "bias"])
        setattr(parent, attr, layer)
    mx.eval(model.parameters())


def adapter_tensors(model: GPT) -> dict[str, np.ndarray]:
    """The adapter's tensors, float32 on the host, under the twins' names."""
    return {name: np.array(p.astype(mx.float32)) for name, p in tree_flatten(model.trainable_parameters())}


def _submodule(model: GPT, name: str) -> nn.Module:
    module = model
    for part in name.split("."):
        module = module[int(part)] if part.isdigit() else getattr(module, part)
    return module
