"""Which device the MLX twin runs on, and in which dtype. Twin: jai_torch/device.py.

MLX has one GPU device, Metal on Apple silicon or CUDA where MLX was built for it. The choice is made by
asking MLX what it has (`mx.metal.is_available()`, `mx.cuda.is_available()`), never by the OS.

True float32: on CUDA, MLX runs float32 matmuls as TF32 unless the environment says MLX_ENABLE_TF32=0;
MLX reads that variable once, at the first such matmul, so `set_true_fp32` must run before any work.
Parity between the twins needs it (harmless on the CPU and on Metal).
"""

from __future__ import annotations

import os

import mlx.core as mx

from jai.devices import DeviceError, resolve_dtype

DEVICES = ("auto", "cpu", "gpu")


def gpu_backend() -> str | None:
    """The GPU MLX can use here ("metal" or "cuda"), or None."""
    if mx.metal.is_available():
        return "metal"
    cuda = getattr(mx, "cuda", None)  # MLX builds before CUDA support have no mx.cuda
    if cuda is not None and cuda.is_available():
        return "cuda"
    return None


def resolve_device(name: str = "auto") -> str:
    """`auto` picks the GPU when there is one, else the CPU; asking for a missing GPU is an error."""
    if name not in DEVICES:
        raise DeviceError(f"unknown device {name!r} for the MLX twin; choose one of {', '.join(DEVICES)}")
    gpu = gpu_backend()
    if name == "auto":
        return "gpu" if gpu else "cpu"
    if name == "gpu" and gpu is None:
        raise DeviceError("device 'gpu': MLX sees no GPU here (neither Metal nor CUDA); use --device cpu")
    return name


def use_device(name: str) -> mx.Device:
    """Make `name` (a resolved device) the default for every array created from now on."""
    device = mx.gpu if name == "gpu" else mx.cpu
    mx.set_default_device(device)
    return device


def supports_bf16(name: str) -> bool:
    # Any MLX GPU computes in bfloat16; the CPU backend has no fast bfloat16 matmul, so CPU runs stay fp32.
    return name == "gpu"


def default_dtype(name: str, requested: str = "auto") -> str:
    """The dtype a run uses: `auto` is bfloat16 where the device supports it, float32 elsewhere."""
    return resolve_dtype(requested, name, supports_bf16(name))


def set_true_fp32() -> None:
    """Run float32 matmuls in true float32 (no TF32), unless the environment already chose."""
    os.environ.setdefault("MLX_ENABLE_TF32", "0")


def describe(name: str) -> str:
    gpu = gpu_backend()
    return f"mlx {name} ({gpu})" if name == "gpu" and gpu else f"mlx {name}"
