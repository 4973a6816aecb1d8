"""bfloat16 means the same in both twins: float32 master weights and Adam moments, bfloat16 compute.

Tolerance, measured: over 50 steps from one checkpoint on the same batches, the twins' bf16 loss curves
differ by at most 1.8e-3, about as much as each twin's bf16 curve differs from its own float32 curve
(1.2e-3 to 2.0e-3). That is bfloat16's rounding at work: an 8-bit mantissa rounds each matmul input by
up to 2^-9 = 2e-3 relative, and the twins round at slightly different places (PyTorch's autocast keeps
the residual stream in float32, MLX computes the whole forward pass on bf16 copies). The bound, 1e-2,
leaves 5x headroom, and stays well below what a real difference in semantics costs: the float32 twins
agree to 1e-6, shifting the warmup by one step moves the curve by 3e-2 (tests/test_train.py), and a twin
training in float32 while the other trains in bf16 would still pass only if bf16 did nothing, which the
second assertion rules out.
"""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file

from jai.checkpoint import train_state, weights
from tests.test_train import QUIET, TWINS, data, init_ckpt, losses, small  # noqa: F401

BF16_TOL = 1e-2


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data, init_ckpt):  # noqa: F811
    root = tmp_path_factory.mktemp("bf16")
    for name, train in TWINS.items():
        for dtype in ("float32", "bfloat16"):
            train(data, root / f"{name}-{dtype}", None, small(dtype=dtype), init_from=init_ckpt, **QUIET)
    return root


def test_the_twins_bf16_loss_curves_agree(runs):
    mlx, torch = losses(runs / "mlx-bfloat16"), losses(runs / "torch-bfloat16")
    assert len(mlx) == len(torch) == 50
    assert np.abs(mlx - torch).max() < BF16_TOL


@pytest.mark.parametrize("twin", TWINS)
def test_bf16_computes_in_bf16_over_float32_masters(runs, twin):
    bf16, fp32 = losses(runs / f"{twin}-bfloat16"), losses(runs / f"{twin}-float32")
    assert np.abs(bf16 - fp32).max() > 1e-5  # bf16 rounding is visible: the compute really was bf16
    ckpt = runs / f"{twin}-bfloat16" / "ckpt"
    state = train_state.read_state_json(ckpt)
    assert state.dtype == "bfloat16"
    model = weights.read_header(ckpt / weights.WEIGHTS_FILE)
    moments = weights.read_header(ckpt / train_state.STATE_DIR / train_state.OPTIMIZER_FILE)
    assert {dtype for dtype, _ in [*model.values(), *moments.values()]} == {"F32"}
    # float32 masters: the trained weights use float32's low mantissa bits, which bf16 weights cannot
    trained = load_file(ckpt / weights.WEIGHTS_FILE)["h.0.mlp.c_fc.weight"]
    low_bits = trained.view(np.uint32) & 0xFFFF
    assert np.mean(low_bits != 0) > 0.9
