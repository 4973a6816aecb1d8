"""A fast BLAS for MLX's CPU backend on Linux, loaded before `mlx.core`.

The Linux `mlx-cpu` wheel links the reference (Netlib) BLAS, whose single-precision GEMM runs at a few
GFLOP/s; a CPU matmul-bound model then trains 30-50x slower than it could. MLX calls the standard CBLAS
entry points (`cblas_sgemm`, ...) through lazily bound PLT slots, so a library exporting them that is
already in the process's global symbol scope (loaded with `RTLD_GLOBAL`) wins over the bundled one.
`preload()` does that; `jai_mlx/__init__.py` calls it before it imports `mlx.core`.

Where the library comes from, first found wins:

1. `JAI_BLAS=/path/to/libblas.so`: exactly that library (any CBLAS: OpenBLAS, MKL's `libmkl_rt`, BLIS).
   `JAI_BLAS=0` (or `off`, `none`) turns the whole thing off.
2. The `ngsolve-openblas` wheel (installed by the `mlx` extra on Linux x86_64): OpenBLAS built with
   DYNAMIC_ARCH, so it picks its kernels for the CPU it runs on.
3. A system OpenBLAS (Debian/Ubuntu: `apt-get install libopenblas0-pthread`).

PyPI OpenBLAS builds need `libgfortran.so.5`, which many machines lack. MLX's and NumPy's wheels bundle
one, but under a hashed name (`libgfortran-<hash>.so.5.0.0`) that the loader does not match against the
name OpenBLAS asks for. The ngsolve build finds its dependencies through `RPATH=$ORIGIN`, so the loader
is shown the library through a throw-away directory of symlinks: `libopenblas.so` -> the wheel's,
`libgfortran.so.5` -> the bundled one (and its hashed siblings, e.g. libquadmath, which it finds the same
way). The directory is deleted once the library is loaded; nothing is copied or patched.

Everything here is best effort and silent: where no library loads, MLX keeps its bundled BLAS and
`blas_info()` says why. On macOS (Accelerate, Metal) and other systems nothing is done. This module must
not import MLX: it runs before `mlx.core` is imported, which is the point.

(cmeel-openblas, the other PyPI OpenBLAS with standard symbols, is built for one CPU — SKYLAKEX on
x86_64, NEOVERSEN2 on aarch64 — and would crash with an illegal instruction elsewhere; scipy-openblas
prefixes its symbols, so MLX would not see them. Neither is used.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ENV = "JAI_BLAS"
TORCH_FIRST_ENV = "JAI_TORCH_FIRST"
OFF = {"0", "off", "none", "false", "no"}
GFORTRAN = "libgfortran.so.5"

_state: dict[str, Any] | None = None
_handle: ctypes.CDLL | None = None


def _site_dirs() -> list[Path]:
    return [Path(p) for p in dict.fromkeys(sys.path) if p and os.path.isdir(p)]


def candidates() -> list[tuple[str, str]]:
    """(source, path or loader name) of every fast BLAS this machine offers, in the order tried."""
    found: list[tuple[str, str]] = []
    for site in _site_dirs():
        for lib in sorted(glob.glob(str(site / "ngsolve_openblas" / "libopenblas*.so*"))):
            found.append(("ngsolve-openblas", lib))
    system = ctypes.util.find_library("openblas")
    if system:
        found.append(("system", system))
    return found


def gfortran_candidates() -> list[str]:
    """Bundled copies of libgfortran.so.5 (hashed names) in the wheels of MLX and NumPy."""
    out: list[str] = []
    for site in _site_dirs():
        for libs in ("mlx_cpu.libs", "numpy.libs"):
            out += sorted(glob.glob(str(site / libs / "libgfortran*.so.5*")))
    return out


def mlx_already_imported() -> bool:
    return "mlx.core" in sys.modules


def _open(path: str) -> ctypes.CDLL:
    return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


def _open_with_gfortran(path: str) -> ctypes.CDLL:
    """Load `path`, which needs libgfortran.so.5 and looks for it through RPATH=$ORIGIN, beside a
    bundled copy."""
    errors = []
    for gfortran in gfortran_candidates():
        tmp = Path(tempfile.mkdtemp(prefix="jai-blas-"))
        try:
            target = tmp / Path(path).name
            os.symlink(os.path.realpath(path), target)
            os.symlink(gfortran, tmp / GFORTRAN)
            for sibling in glob.glob(os.path.join(os.path.dirname(gfortran), "*.so*")):
                if sibling != gfortran:
                    os.symlink(sibling, tmp / os.path.basename(sibling))
            return _open(str(target))
        except OSError as e:
            errors.append(f"with {gfortran}: {e}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not errors:
        raise OSError(f"{path} needs {GFORTRAN}, and no bundled copy of it was found")
    raise OSError("; ".join(errors))


def load_library(path: str) -> ctypes.CDLL:
    """Load a CBLAS library into the global symbol scope; raise OSError if it cannot be used."""
    try:
        lib = _open(path)
    except OSError as e:
        if GFORTRAN not in str(e):
            raise
        lib = _open_with_gfortran(path)
    try:
        lib.cblas_sgemm  # noqa: B018 - the symbol MLX calls
    except AttributeError:
        raise OSError(f"{path} does not export cblas_sgemm") from None
    return lib


def _openblas_details(lib: ctypes.CDLL) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, key, restype in (
        ("openblas_get_config", "config", ctypes.c_char_p),
        ("openblas_get_corename", "core", ctypes.c_char_p),
        ("openblas_get_num_threads", "threads", ctypes.c_int),
    ):
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = restype
            value = fn()
            out[key] = value.decode() if isinstance(value, bytes) else value
    return out


def _loaded_path(path: str) -> str:
    """The file behind `path` as the process mapped it (a loader name like libopenblas.so.0 resolved)."""
    if os.path.isabs(path):
        return os.path.realpath(path)
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 6 and os.path.basename(fields[-1]).startswith(path.split(".so")[0]):
                    return fields[-1]
    except OSError:
        pass
    return path


def preload(force: bool = False) -> dict[str, Any]:
    """Load the first fast BLAS that works (see the module doc). Idempotent, never raises.

    Returns the state `blas_info()` reports (without the GEMM measurement).
    """
    global _state, _handle
    if _state is not None and not force:
        return _state
    state: dict[str, Any] = {
        "platform": sys.platform,
        "status": "bundled",
        "library": None,
        "source": None,
        "late": False,
        "errors": [],
        "note": "",
    }
    _state = state
    try:
        _preload(state)
    except Exception as e:  # pragma: no cover - best effort: never break `import jai_mlx`
        state["status"], state["note"] = "failed", f"unexpected error: {e!r}"
    return state


def _preload(state: dict[str, Any]) -> None:
    global _handle
    if not sys.platform.startswith("linux"):
        state["status"] = "skipped"
        state["note"] = "not Linux: MLX uses the platform's BLAS (Accelerate on macOS)"
        return
    choice = os.environ.get(ENV, "").strip()
    if choice.lower() in OFF:
        state["status"], state["note"] = "disabled", f"{ENV}={choice}: MLX keeps its bundled BLAS"
        return
    _torch_first(state)
    if mlx_already_imported():
        # The library still loads, but MLX has already bound its BLAS symbols (measured: the GEMM
        # speed stays the reference BLAS's even when no matmul has run yet). Say so; the GEMM
        # measurement in blas_info() shows the consequence.
        state["late"] = True
        state["note"] = (
            "too late: mlx.core was imported before jai_mlx, so MLX keeps its bundled BLAS "
            "(import jai_mlx, or jai_mlx.blas, before anything imports mlx)"
        )
    tries = [(ENV, choice)] if choice else candidates()
    for source, path in tries:
        try:
            lib = load_library(path)
        except OSError as e:
            state["errors"].append(f"{source}: {e}")
            continue
        _handle = lib
        state.update(status="loaded", source=source, library=_loaded_path(path), **_openblas_details(lib))
        return
    if not tries:
        state["note"] = (
            state["note"] + "; " if state["note"] else ""
        ) + "no fast BLAS found (pip install ngsolve-openblas, or apt-get install libopenblas0-pthread)"
    state["status"] = "failed" if choice else "bundled"


def _torch_first(state: dict[str, Any]) -> None:
    """Import PyTorch before the library is loaded, where PyTorch is installed and not yet imported.

    A library in the global symbol scope interposes on every library loaded after it that looks up the
    same names, and PyTorch's CPU wheel reaches its bundled MKL through such names (sgemm_, the batched
    cblas calls). Imported after OpenBLAS, PyTorch runs its matmuls through OpenBLAS, measured 2x
    slower here, and its batched matmul crashes. Imported first, it keeps MKL, and MLX still finds
    OpenBLAS. The cost is PyTorch's import time (~1 s) in MLX processes on machines that have it.
    `JAI_TORCH_FIRST=0` skips it, for processes that will never import torch (the benchmark's workers).
    """
    if "torch" in sys.modules or os.environ.get(TORCH_FIRST_ENV, "").strip().lower() in OFF:
        return
    if importlib.util.find_spec("torch") is None:
        return
    try:
        import torch  # noqa: F401
    except Exception as e:  # a broken torch install must not break the MLX twin
        state["errors"].append(f"importing torch first: {e!r}")
    else:
        state["torch_first"] = True


def measure_gemm(n: int = 512, seconds: float = 0.3) -> dict[str, Any]:
    """MLX float32 GEMM speed at n x n x n (best of repeats) and its largest error against NumPy."""
    import mlx.core as mx
    import numpy as np

    a, b = mx.random.normal((n, n), key=mx.random.key(0)), mx.random.normal((n, n), key=mx.random.key(1))
    mx.eval(a, b)
    c = a @ b
    mx.eval(c)
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        mx.eval(a @ b)
        best = min(best, time.perf_counter() - t)
    ref = np.asarray(a, dtype=np.float64) @ np.asarray(b, dtype=np.float64)
    err = float(np.max(np.abs(np.asarray(c) - ref)) / np.max(np.abs(ref)))
    return {"gemm_n": n, "gemm_gflops": 2 * n**3 / best / 1e9, "gemm_rel_err": err}


def blas_info(measure: bool = True) -> dict[str, Any]:
    """Which BLAS MLX's CPU backend uses here, why, and (measure=True) how fast its GEMM runs."""
    info = dict(preload())
    info["errors"] = list(info["errors"])
    if measure and info["status"] != "skipped":
        try:
            import mlx.core as mx

            with mx.stream(mx.cpu):
                info.update(measure_gemm())
        except Exception as e:  # pragma: no cover - e.g. MLX missing
            info["gemm_error"] = repr(e)
    return info
