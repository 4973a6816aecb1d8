"""A fast BLAS for MLX's CPU backend on Linux, handed to MLX alone.

The Linux `mlx-cpu` wheel links the reference (Netlib) BLAS, whose single-precision GEMM runs at a few
GFLOP/s; a CPU matmul-bound model then trains 30-50x slower than it could. MLX's library (libmlx.so) calls
the standard CBLAS and LAPACK entry points (`cblas_sgemm`, `sgesdd_`, ...) through its own table of
function addresses (the GOT, filled by the dynamic loader). `preload()` loads a fast BLAS privately
(`RTLD_LOCAL`: its names stay out of the process's global symbol scope) and `bind()`, once `mlx.core` is
imported, writes that library's addresses into the slots of libmlx's table for the names it exports:
MLX then calls the fast BLAS, and nothing else in the process sees it. `jai_mlx/__init__.py` does both.

Why not the simpler global preload (`RTLD_GLOBAL` before mlx.core, as this module once did): a library in
the global scope interposes on every library loaded after it that looks up the same names, and
PyTorch's CPU wheel reaches its bundled MKL through such names (sgemm_, the batched cblas calls). torch
imported after a global OpenBLAS ran its matmuls through OpenBLAS (2x slower) and crashed in batched
matmuls; the cure was to import torch first, so an MLX-only process paid for importing torch. Bound
privately, the import order of MLX and torch no longer matters, and `import jai_mlx` never imports torch.

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

Everything here is best effort and silent: where no library loads (or libmlx's table cannot be read:
not an ELF64 little-endian file, an unknown relocation type), MLX keeps its bundled BLAS and `blas_info()`
says why. On macOS (Accelerate, Metal) and other systems nothing is done. The module imports no framework.

(cmeel-openblas, the other PyPI OpenBLAS with standard symbols, is built for one CPU — SKYLAKEX on
x86_64, NEOVERSEN2 on aarch64 — and would crash with an illegal instruction elsewhere; scipy-openblas
prefixes its symbols, so MLX would not see them. Neither is used.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ENV = "JAI_BLAS"
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
    return ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)  # private: see bind() and the module doc


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
    """Load a CBLAS library privately (RTLD_LOCAL); raise OSError if it cannot be used."""
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


# --- handing the library to MLX: its GOT slots ------------------------------------------------------------

# Relocation types of a GOT slot holding a function's address: (JUMP_SLOT, GLOB_DAT) per machine.
SLOT_RELOCATIONS = {62: (7, 6), 183: (1026, 1025)}  # EM_X86_64, EM_AARCH64
SHT_RELA, SHT_DYNSYM = 4, 11


def got_slots(path: str) -> dict[str, list[int]]:
    """{symbol: [offsets of its GOT slots]} for the functions the ELF shared library `path` imports.

    Read from the file's section headers: its RELA relocation sections (.rela.plt, .rela.dyn) and the
    dynamic symbol table they point into. Offsets are relative to the library's load address. Raises
    OSError for anything but a little-endian ELF64 file of a known machine."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise OSError(f"{path}: not a little-endian ELF64 file")
    machine = struct.unpack_from("<H", data, 18)[0]
    if machine not in SLOT_RELOCATIONS:
        raise OSError(f"{path}: unknown machine {machine}")
    kinds = SLOT_RELOCATIONS[machine]
    shoff, shentsize, shnum = struct.unpack_from("<Q", data, 40)[0], *struct.unpack_from("<HH", data, 58)
    # Section header: name, type, flags, addr, offset, size, link, info, addralign, entsize
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    slots: dict[str, list[int]] = {}
    for sec in sections:
        if sec[1] != SHT_RELA:
            continue
        symtab = sections[sec[6]]
        if symtab[1] != SHT_DYNSYM:
            continue
        strtab = sections[symtab[6]]
        for off in range(sec[4], sec[4] + sec[5], 24):  # Elf64_Rela: offset, info, addend
            r_offset, r_info = struct.unpack_from("<QQ", data, off)
            if r_info & 0xFFFFFFFF not in kinds:
                continue
            # Elf64_Sym: name (u32), info, other (u8), shndx (u16), value, size (u64)
            st_name, _, _, shndx = struct.unpack_from("<IBBH", data, symtab[4] + (r_info >> 32) * 24)
            if shndx != 0:  # defined in the library itself: not an import
                continue
            end = data.index(b"\0", strtab[4] + st_name)
            slots.setdefault(data[strtab[4] + st_name : end].decode(), []).append(r_offset)
    return slots


def _mappings(path: str) -> list[tuple[int, int, str, int]]:
    """(start, end, permissions, file offset) of every mapping of `path` in this process."""
    real, out = os.path.realpath(path), []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and os.path.realpath(fields[5]) == real:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                out.append((start, end, fields[1], int(fields[2], 16)))
    return out


def _write_pointer(address: int, value: int, maps: list[tuple[int, int, str, int]]) -> None:
    """Store `value` at `address`, making its page writable for the moment if it is read-only (RELRO)."""
    perms = next((p for start, end, p, _ in maps if start <= address < end), None)
    if perms is None:
        raise OSError(f"address {address:#x} is not in the library's mappings")
    if "w" in perms:
        ctypes.c_void_p.from_address(address).value = value
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    page = os.sysconf("SC_PAGE_SIZE")
    base = address & ~(page - 1)
    prot = (1 if "r" in perms else 0) | (4 if "x" in perms else 0)
    if libc.mprotect(base, page, prot | 2) != 0:
        raise OSError(ctypes.get_errno(), f"mprotect of the page at {base:#x}")
    try:
        ctypes.c_void_p.from_address(address).value = value
    finally:
        libc.mprotect(base, page, prot)


def mlx_libraries() -> list[str]:
    """The mapped files of MLX's own shared libraries (libmlx.so), once mlx.core is imported."""
    found = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if (
                len(fields) >= 6
                and os.path.basename(fields[5]).startswith("libmlx")
                and fields[5] not in found
            ):
                found.append(fields[5])
    return found


def bind() -> dict[str, Any]:
    """Point MLX's BLAS and LAPACK imports at the library preload() loaded. Idempotent, never raises.

    Call once `mlx.core` is imported (jai_mlx/__init__.py does). Returns the state blas_info() reports,
    with `bound`: the names now served by the fast BLAS (cblas_sgemm among them)."""
    state = preload()
    if state["status"] != "loaded" or state.get("bound") or _handle is None:
        return state
    try:
        libraries = mlx_libraries()
        if not libraries:
            raise OSError("no libmlx is mapped: import mlx.core first")
        # dlsym on the handle also finds the library's own dependencies (libc's malloc, libm's sin):
        # only addresses inside the BLAS library's own mappings are its functions.
        own = _mappings(state["library"])
        bound = []
        for library in libraries:
            maps = _mappings(library)
            base = next(start for start, _, _, offset in maps if offset == 0)
            for name, offsets in sorted(got_slots(library).items()):
                fn = getattr(_handle, name, None)
                address = fn is not None and ctypes.cast(fn, ctypes.c_void_p).value
                if not address or not any(start <= address < end for start, end, _, _ in own):
                    continue
                for off in offsets:
                    _write_pointer(base + off, address, maps)
                bound.append(name)
        if "cblas_sgemm" not in bound:
            raise OSError("libmlx imports no cblas_sgemm that the library exports")
        state["bound"] = bound
    except Exception as e:  # best effort: MLX keeps its bundled BLAS, and says why
        state.update(status="bundled", bound=[], note=f"could not hand the library to MLX: {e}")
        state["errors"].append(f"bind: {e!r}")
    return state


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
    info = dict(bind() if mlx_already_imported() else preload())
    info["errors"] = list(info["errors"])
    if measure and info["status"] != "skipped":
        try:
            import mlx.core as mx

            with mx.stream(mx.cpu):
                info.update(measure_gemm())
        except Exception as e:  # pragma: no cover - e.g. MLX missing
            info["gemm_error"] = repr(e)
    return info
