"""JAI's MLX twin. Mirrors jai_torch file for file; shared, framework-free code lives in `jai`."""

# On Linux, hand MLX a fast BLAS (see jai_mlx/blas.py): the mlx-cpu wheel's own BLAS is the slow
# reference one. Loaded privately, so torch and anything else in the process keep their own. Does
# nothing on macOS; never raises.
from jai_mlx import blas as _blas

_blas.preload()

try:
    import mlx.core  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "the MLX twin (jai_mlx) needs MLX: pip install -e '.[mlx]' "
        "(Metal on macOS, CPU on Linux; CUDA users: '.[mlx-cuda12]' or '.[mlx-cuda13]')"
    ) from e

_blas.bind()
