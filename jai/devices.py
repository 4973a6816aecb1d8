"""Device and dtype choices shared by both twins, without importing either framework.

Each twin's `device.py` answers what its framework can see (`resolve_device`, `supports_bf16`); the
rules for turning a request into a choice live here once, so `--dtype auto` means the same in both:
bfloat16 on a GPU that supports it, float32 everywhere else (CPU runs stay in float32: neither
framework has a fast bfloat16 matmul on the CPU).
"""

from __future__ import annotations

import importlib
import platform
from types import ModuleType

from jai.errors import InputError

DTYPES = ("auto", "float32", "bfloat16")
BACKENDS = ("mlx", "torch")


class DeviceError(InputError):
    """A device or dtype that was asked for and is not available here."""


def twin_module(backend: str, name: str) -> ModuleType:
    """The twin's module `name` (`jai_mlx.<name>` or `jai_torch.<name>`): the one door from shared code to
    a twin. Imported when asked, never at import time, so shared code loads no framework it was not asked
    for (the import contracts in pyproject.toml forbid the static import; tests/test_imports.py this one)."""
    return importlib.import_module(f"jai_{backend}.{name}")


def default_backend() -> str:
    """MLX on Apple silicon (macOS on arm64), PyTorch everywhere else; both can always be chosen."""
    return "mlx" if platform.system() == "Darwin" and platform.machine() == "arm64" else "torch"


def resolve_dtype(requested: str, device: str, bf16_ok: bool) -> str:
    """Turn `auto|float32|bfloat16` into the dtype a run uses on `device`, or explain why not."""
    if requested not in DTYPES:
        raise DeviceError(f"unknown dtype {requested!r}; choose one of {', '.join(DTYPES)}")
    if requested == "auto":
        return "bfloat16" if bf16_ok else "float32"
    if requested == "bfloat16" and not bf16_ok:
        raise DeviceError(f"bfloat16 is not supported on device {device!r} here; use --dtype float32")
    return requested


# CPU flags of native bfloat16 arithmetic: AVX-512 BF16 dot products (Zen 4+, Cooper Lake+) and AMX tiles
# (Sapphire Rapids+). Without them a bfloat16 matmul is emulated and slower than float32.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def native_bf16_cpu(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bfloat16 natively (a flag of BF16_CPU_FLAGS in `cpuinfo`'s flags).

    Measured on a Zen 5 EPYC with avx512_bf16: the PyTorch twin's bfloat16 step ran 1.22-1.46x its float32
    step (docs/benchmarks.md). Not yet used by `--dtype auto`, which keeps float32 on every CPU until
    answer scores show bfloat16 no worse. Where there is no such file (macOS, Windows): False."""
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return any(flag in BF16_CPU_FLAGS for flag in line.split(":", 1)[1].split())
    except OSError:
        return False
    return False
