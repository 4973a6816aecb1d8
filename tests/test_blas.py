"""The fast-BLAS preload of the MLX twin (jai_mlx/blas.py): its choices, its fallbacks, and that MLX's
results stay right with it. No timing assertions: speed is the benchmark's business."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("mlx.core")


def standalone():
    """A fresh copy of jai_mlx/blas.py, imported without jai_mlx (whose __init__ already ran preload)."""
    spec = importlib.util.spec_from_file_location("blas_under_test", ROOT / "jai_mlx" / "blas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def info_in_subprocess(code: str, **env: str) -> dict:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    if "JAI_BLAS" not in env:
        full_env.pop("JAI_BLAS", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


INFO = "import json, jai_mlx; from jai_mlx.blas import blas_info; print(json.dumps(blas_info()))"


def test_disabled_by_env_keeps_the_bundled_blas():
    info = info_in_subprocess(INFO, JAI_BLAS="0")
    assert info["status"] == "disabled" and info["library"] is None
    assert "JAI_BLAS=0" in info["note"]
    assert info["gemm_rel_err"] < 1e-5  # MLX still multiplies correctly


def test_env_override_that_does_not_load_falls_back_and_says_why(tmp_path):
    missing = tmp_path / "libnothere.so"
    info = info_in_subprocess(INFO, JAI_BLAS=str(missing))
    assert info["status"] == "failed" and info["library"] is None
    assert any(str(missing) in e for e in info["errors"])
    assert info["gemm_rel_err"] < 1e-5


def test_env_override_without_cblas_is_refused(monkeypatch):
    blas = standalone()
    monkeypatch.setattr(blas.sys, "platform", "linux")
    monkeypatch.setenv("JAI_BLAS", "libm.so.6")  # loads, but exports no cblas_sgemm
    monkeypatch.setattr(blas, "mlx_already_imported", lambda: False)
    state = blas.preload(force=True)
    assert state["status"] == "failed"
    assert "does not export cblas_sgemm" in " ".join(state["errors"])


def test_no_library_found_keeps_the_bundled_blas(monkeypatch):
    blas = standalone()
    monkeypatch.setattr(blas.sys, "platform", "linux")
    monkeypatch.delenv("JAI_BLAS", raising=False)
    monkeypatch.setattr(blas, "candidates", lambda: [])
    monkeypatch.setattr(blas, "mlx_already_imported", lambda: False)
    state = blas.preload(force=True)
    assert state["status"] == "bundled" and state["library"] is None
    assert "no fast BLAS found" in state["note"]
    info = blas.blas_info(measure=False)
    assert info["status"] == "bundled" and "gemm_gflops" not in info


def test_not_linux_does_nothing(monkeypatch):
    blas = standalone()
    monkeypatch.setattr(blas.sys, "platform", "darwin")
    monkeypatch.setattr(blas, "load_library", lambda path: pytest.fail("must not load anything on macOS"))
    state = blas.preload(force=True)
    assert state["status"] == "skipped" and "Accelerate" in state["note"]
    assert blas.blas_info()["status"] == "skipped"  # and measures nothing


def test_preload_is_idempotent():
    blas = standalone()
    assert blas.preload() is blas.preload()


def test_needing_gfortran_without_a_bundled_copy_is_explained(monkeypatch, tmp_path):
    blas = standalone()
    monkeypatch.setattr(blas, "gfortran_candidates", lambda: [])
    with pytest.raises(OSError, match="no bundled copy"):
        blas._open_with_gfortran(str(tmp_path / "libopenblas.so"))


def test_info_dict_has_the_documented_keys():
    info = info_in_subprocess(INFO)
    for key in (
        "platform",
        "status",
        "library",
        "source",
        "late",
        "errors",
        "note",
        "gemm_gflops",
        "gemm_rel_err",
    ):
        assert key in info
    if sys.platform.startswith("linux"):
        assert info["status"] in ("loaded", "bundled")


def test_importing_mlx_first_is_detected():
    info = info_in_subprocess("import mlx.core; " + INFO)
    if info["status"] == "loaded":
        assert info["late"] is True and "too late" in info["note"]


def test_mlx_matmuls_stay_correct_with_the_fast_blas():
    if info_in_subprocess(INFO)["status"] != "loaded":
        pytest.skip("no fast BLAS on this machine")
    code = r"""
import json
import jai_mlx
import mlx.core as mx
import mlx.nn as nn
import numpy as np

rng = np.random.default_rng(0)
errs = []
# the model's own shapes and layouts: x @ W.T (Linear), its two backward products, batched, odd sizes
for m, k, n in [(64, 48, 144), (257, 33, 129), (1, 384, 1152), (512, 384, 1536)]:
    a = rng.standard_normal((m, k), dtype=np.float32)
    w = rng.standard_normal((n, k), dtype=np.float32)
    dy = rng.standard_normal((m, n), dtype=np.float32)
    A, W, DY = mx.array(a), mx.array(w), mx.array(dy)
    for got, ref in ((A @ W.T, a @ w.T), (DY @ W, dy @ w), (DY.T @ A, dy.T @ a)):
        ref = ref.astype(np.float64)
        errs.append(float(np.abs(np.array(got) - ref).max() / np.abs(ref).max()))
b = rng.standard_normal((3, 4, 17, 8), dtype=np.float32)
c = rng.standard_normal((3, 4, 8, 17), dtype=np.float32)
errs.append(float(np.abs(np.array(mx.array(b) @ mx.array(c)) - b @ c).max()))
lin = nn.Linear(48, 96)
x = rng.standard_normal((5, 48), dtype=np.float32)
ref = x @ np.array(lin.weight).T + np.array(lin.bias)
errs.append(float(np.abs(np.array(lin(mx.array(x))) - ref).max()))
print(json.dumps(errs))
"""
    errs = info_in_subprocess(code)
    assert max(errs) < 1e-4, errs


TORCH_AFTER_MLX = """
import json, sys
import jai_mlx
torch_first = "torch" in sys.modules
import numpy as np, torch
torch.manual_seed(0)
q, k = torch.randn(2, 3, 64, 32), torch.randn(2, 3, 64, 32)
got = (q @ k.transpose(-1, -2)).numpy()  # a batched matmul: what crashed when OpenBLAS came first
want = np.einsum("bhqd,bhkd->bhqk", q.double().numpy(), k.double().numpy())
print(json.dumps({"torch_first": torch_first, "err": float(np.abs(got - want).max())}))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or importlib.util.find_spec("torch") is None,
    reason="the preload and the symbol clash exist on Linux, with torch installed",
)
def test_torch_imported_after_jai_mlx_keeps_its_own_blas():
    out = info_in_subprocess(TORCH_AFTER_MLX)
    assert out["torch_first"]  # preload imported torch before putting OpenBLAS in the global scope
    assert out["err"] < 1e-4
    info = info_in_subprocess(INFO)
    assert info["status"] == "loaded" and info["gemm_rel_err"] < 1e-5  # and MLX still has the fast BLAS
    # The benchmark's one-framework workers skip it.
    skipped = info_in_subprocess(
        "import json, sys, jai_mlx; print(json.dumps('torch' in sys.modules))", JAI_TORCH_FIRST="0"
    )
    assert skipped is False
