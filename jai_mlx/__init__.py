"""JAI's MLX twin. Mirrors jai_torch file for file; shared, framework-free code lives in `jai`."""

try:
    import mlx.core  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "the MLX twin (jai_mlx) needs MLX: pip install -e '.[mlx]' "
        "(Metal on macOS, CPU on Linux; CUDA users: '.[mlx-cuda12]' or '.[mlx-cuda13]')"
    ) from e
