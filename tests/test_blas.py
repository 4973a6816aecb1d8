"""The fast-BLAS preload of the MLX twin (jai_mlx/blas.py): its choices, its fallbacks, and that MLX's
results stay right with it. No timing assertions: speed is the benchmark's business."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def test_importing_mlx_first_still_gets_the_fast_blas():
    info = info_in_subprocess("import mlx.core; " + INFO)  # the order no longer matters: bind() after
    if info["status"] == "loaded":
        assert info["late"] is False and "cblas_sgemm" in info["bound"]
        assert info["gemm_rel_err"] < 1e-5


def test_only_the_blas_names_are_bound():
    info = info_in_subprocess(INFO)
    if info["status"] != "loaded":
        pytest.skip("no fast BLAS on this machine")
    assert {"cblas_sgemm", "cblas_dgemm"} <= set(info["bound"])
    # nothing that the library merely depends on (libc, libm): only BLAS and LAPACK entry points
    assert all(n.startswith("cblas_") or n.endswith("_") for n in info["bound"]), info["bound"]


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


BLOCK_TORCH = """
import sys


class NoTorch:  # a meta-path finder that makes torch unimportable, as on an MLX-only install
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is blocked in this test")
        return None


sys.meta_path.insert(0, NoTorch())
"""

MLX_STEP = """
import json, sys
import jai_mlx
import mlx.core as mx
import numpy as np
from jai.config import GPTConfig
from jai.train_config import TrainConfig
from jai_mlx.blas import blas_info
from jai_mlx.model import GPT
from jai_mlx.optim import make_optimizer, make_train_step

cfg = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=32)
model = GPT(cfg, seed=0)
tc = TrainConfig(batch_size=4, warmup_steps=0, lr=1e-2)
step = make_train_step(model, make_optimizer(model, tc), tc)
xy = np.random.default_rng(0).integers(0, 97, size=(1, 4, 17))
x, y = mx.array(xy[..., :-1]), mx.array(xy[..., 1:])
losses = []
for _ in range(5):
    loss, norm = step(x, y)
    losses.append(loss.item())
print(json.dumps({
    "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")),
    "losses": losses,
    "blas": blas_info(measure=False),
}))
"""


def test_mlx_trains_without_torch():
    """An MLX-only process: jai_mlx imports, gets its fast BLAS and trains with torch unimportable."""
    out = info_in_subprocess(BLOCK_TORCH + MLX_STEP)
    assert out["torch"] == []
    losses = out["losses"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0] - 0.5  # five steps on one batch: it learns
    if sys.platform.startswith("linux") and out["blas"]["source"]:
        assert out["blas"]["status"] == "loaded" and "cblas_sgemm" in out["blas"]["bound"]


BOTH = """
import ctypes, json, sys
FIRST
import numpy as np
import torch
import mlx.core as mx
from jai_mlx.blas import blas_info

torch.manual_seed(0)
errs = {}
q, k = torch.randn(2, 3, 64, 32), torch.randn(2, 3, 64, 32)
got = (q @ k.transpose(-1, -2)).numpy()  # a batched matmul: what crashed when OpenBLAS was global
want = np.einsum("bhqd,bhkd->bhqk", q.double().numpy(), k.double().numpy())
errs["torch_bmm"] = float(np.abs(got - want).max())
a, b = torch.randn(300, 200), torch.randn(200, 100)
errs["torch_mm"] = float(((a @ b).double() - a.double() @ b.double()).abs().max())
x = torch.randn(8, 48, requires_grad=True)
lin = torch.nn.Linear(48, 96)
lin(x).sum().backward()  # the backward products (sgemm_ through MKL)
errs["torch_grad"] = float((x.grad.double() - lin.weight.double().sum(0)).abs().max())
m = np.random.default_rng(0).standard_normal((2, 257, 129), dtype=np.float32)
errs["mlx_mm"] = float(np.abs(np.array(mx.array(m[0]) @ mx.array(m[1]).T) - m[0] @ m[1].T).max())
# OpenBLAS stays out of the global symbol scope: nothing loaded later can bind to it by name
glob = ctypes.CDLL(None)
print(json.dumps({
    "errs": errs,
    "openblas_global": hasattr(glob, "openblas_get_config"),
    "blas": blas_info(measure=False),
}))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or importlib.util.find_spec("torch") is None,
    reason="the symbol clash existed on Linux, with torch installed",
)
@pytest.mark.parametrize("first", ["import jai_mlx", "import torch; import jai_mlx"])
def test_torch_and_mlx_in_one_process_each_keep_their_blas(first):
    out = info_in_subprocess(BOTH.replace("FIRST", first))
    assert max(out["errs"].values()) < 1e-3, out["errs"]
    assert out["openblas_global"] is False
    if out["blas"]["source"]:
        assert out["blas"]["status"] == "loaded" and "cblas_sgemm" in out["blas"]["bound"]
    # no torch import where jai_mlx came first
    only_mlx = info_in_subprocess("import json, sys, jai_mlx; print(json.dumps('torch' in sys.modules))")
    assert only_mlx is False
