"""LoRA layers in PyTorch. Twin: jai_mlx/lora.py; the adapter's format is jai/checkpoint/lora.py's.

`apply_lora` swaps each adapted Linear for a `LoRALinear` holding the same weight and bias (frozen) and
two new trainable matrices; every other parameter is frozen, so the optimizer sees the adapter alone.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from jai.checkpoint.lora import LoraConfig, adapted_layers
from jai_torch.model import GPT


class LoRALinear(nn.Linear):
    """y = x W^T + b + scale * (x A^T) B^T, with W and b frozen and A [r, in], B [out, r] trained."""

    def __init__(self, base: nn.Linear, rank: int, scale: float) -> None:
        super().__init__(base.in_features, base.out_features, device="meta")  # no second weight allocated
        self.weight, self.bias = base.weight, base.bias
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.zeros(rank, base.in_features, **like))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, **like))
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.scale * F.linear(F.linear(x, self.lora_A), self.lora_B)


def apply_lora(model: GPT, lora: LoraConfig, adapter: dict[str, np.ndarray]) -> None:
    """Adapt `model` in place with the adapter's tensors (twins' names, jai/checkpoint/lora.py); freeze
    the rest."""
    model.requires_grad_(False)
    for name in adapted_layers(model.config, lora):
        parent, _, attr = name.rpartition(".")
        layer = LoRALinear(model.get_submodule(parent).get_submodule(attr), lora.rank, lora.scale)
        with torch.no_grad():
            layer.lora_A.copy_(torch.from_numpy(adapter[f"{name}.lora_A"]))
            layer.lora_B.copy_(torch.from_numpy(adapter[f"{name}.lora_B"]))
        setattr(model.get_submodule(parent), attr, layer)


def adapter_tensors(model: GPT) -> dict[str, np.ndarray]:
    """The adapter's tensors, float32 on the host, under the twins' names."""
    return {
        name: p.detach().to("cpu", torch.float32).numpy()
        for name, p in model.named_parameters()
        if p.requires_grad
    }
