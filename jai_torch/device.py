"""Which device the PyTorch twin runs on, and in which dtype. Twin: jai_mlx/device.py.

PyTorch names its GPUs by backend: CUDA first, then Apple's MPS, else the CPU. The choice is made by
asking PyTorch what it has (`torch.cuda.is_available()`, `torch.backends.mps.is_available()`).

True float32: on CUDA, PyTorch may run float32 matmuls and convolutions as TF32 (its
`allow_tf32` switches); `set_true_fp32` turns both off so float32 means float32, as in the MLX twin.
Parity between the twins needs it (harmless on the CPU and on MPS).
"""

from __future__ import annotations

import torch

from jai.devices import DeviceError, resolve_dtype

DEVICES = ("auto", "cpu", "gpu", "cuda", "mps")  # gpu: whichever of cuda and mps there is, as in MLX


def gpu_backend() -> str | None:
    """The GPU PyTorch can use here ("cuda" or "mps"), or None."""
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return None


def resolve_device(name: str = "auto") -> str:
    """`auto` picks the GPU when there is one, else the CPU; asking for a missing GPU is an error."""
    if name not in DEVICES:
        raise DeviceError(f"unknown device {name!r} for the PyTorch twin; choose one of {', '.join(DEVICES)}")
    gpu = gpu_backend()
    if name == "auto" or (name == "gpu" and gpu):
        return gpu or "cpu"
    if name != "cpu" and name != gpu:
        raise DeviceError(f"device {name!r}: PyTorch sees no {name.upper()} device here; use --device cpu")
    return name


def use_device(name: str) -> torch.device:
    """The torch.device for `name` (a resolved device); tensors are placed on it explicitly."""
    return torch.device(name)


def supports_bf16(name: str) -> bool:
    # CUDA from Ampere on; MPS from macOS 14 (asked by trying); CPU runs stay float32, as in the MLX twin.
    if name == "cuda":
        return torch.cuda.is_bf16_supported()
    if name == "mps":
        try:
            torch.ones(1, device="mps", dtype=torch.bfloat16)
        except (RuntimeError, TypeError):
            return False
        return True
    return False


def default_dtype(name: str, requested: str = "auto") -> str:
    """The dtype a run uses: `auto` is bfloat16 where the device supports it, float32 elsewhere."""
    return resolve_dtype(requested, name, supports_bf16(name))


def set_true_fp32() -> None:
    """Run float32 matmuls in true float32 (no TF32)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def describe(name: str) -> str:
    return f"torch {name} ({torch.cuda.get_device_name()})" if name == "cuda" else f"torch {name}"
