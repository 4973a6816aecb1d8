"""JAI's PyTorch twin. Mirrors jai_mlx file for file; shared, framework-free code lives in `jai`."""

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "the PyTorch twin (jai_torch) needs PyTorch: pip install -e '.[torch]' "
        "(on a CPU-only machine add `-c constraints/cpu.txt` for the small CPU build)"
    ) from e
