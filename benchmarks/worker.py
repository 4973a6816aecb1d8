"""One benchmark job in its own process: `python -m jai.benchmarks.worker SPEC.json OUT.json`.

A process per job keeps the twins apart: each imports only its own framework (the MLX one loads its
BLAS before MLX), and each peak-memory figure (the allocator's, or the process's RSS on the CPU) is that
job's alone. A line with a single "." on stdout is a progress tick for the parent's progress bar.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback

TORCH_RUNNERS = ("jai_torch", "transformers", "nanogpt")
MLX_RUNNERS = ("jai_mlx", "mlx_lm")


def rss_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def tick() -> None:
    print(".", flush=True)


def run(spec: dict) -> dict:
    start = time.perf_counter()
    out: dict = {"ok": True}
    try:
        if spec["runner"] in TORCH_RUNNERS:
            from jai.benchmarks import torch_side as side
        elif spec["runner"] in MLX_RUNNERS:
            import jai_mlx  # noqa: F401 - the fast-BLAS preload, before anything imports mlx.core
            from jai.benchmarks import mlx_side as side
        else:
            raise ValueError(f"unknown runner {spec['runner']!r}")
        out["setup"] = side.setup(spec)
        blas = out["setup"].get("blas") or {}
        if blas.get("late"):
            raise RuntimeError(f"the fast BLAS was loaded too late: {blas.get('note')}")
        out["result"] = getattr(side, spec["job"])(spec, tick)
    except Exception as e:
        out.update(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
    out["rss_peak_bytes"] = rss_peak_bytes()
    out["wall_s"] = time.perf_counter() - start
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec_path, out_path = argv
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    out = run(spec)
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f)
    os.replace(tmp, out_path)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
