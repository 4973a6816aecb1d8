"""The twins compute the same function: same checkpoint in, same logits, loss, gradients and update out.

In the spirit of llm.c's parity harness: PyTorch is the reference, the MLX twin is checked against it,
and both are checked against the outside world's GPT-2 (transformers, mlx-lm) on the same directory.
Tolerances are float32 reassociation noise: different BLAS kernels sum in different orders.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mnn
import numpy as np
import pytest
import torch
from mlx.utils import tree_flatten

from jai.config import GPTConfig
from jai.train_config import TrainConfig
from jai_mlx import checkpoint as mlx_ckpt
from jai_mlx import model as mlx_model
from jai_mlx import optim as mlx_optim
from jai_torch import checkpoint as torch_ckpt
from jai_torch import model as torch_model
from jai_torch import optim as torch_optim
from tests.conftest import ODD, TINY

# (config, batch, sequence length): the default shape at a short sequence keeps the suite quick on CPU
CASES = [(TINY, 3, 16), (ODD, 2, 33), (GPTConfig(), 1, 64)]
IDS = ["tiny", "odd", "default"]


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def twins(request, tmp_path_factory):
    """Both twins holding the same weights, plus a batch and the checkpoint directory."""
    cfg, batch, seq = request.param
    ckpt = tmp_path_factory.mktemp("ckpt") / "model"
    torch_ckpt.save_model(torch_model.GPT(cfg, seed=7), ckpt)
    rng = np.random.default_rng(0)
    x = rng.integers(0, cfg.vocab_size, (batch, seq))
    y = rng.integers(0, cfg.vocab_size, (batch, seq))
    return torch_ckpt.load_model(ckpt), mlx_ckpt.load_model(ckpt), x, y, ckpt


def torch_logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def mlx_logits(model: mlx_model.GPT, x: np.ndarray) -> np.ndarray:
    return np.array(model(mx.array(x)))


def assert_close(a: np.ndarray, b: np.ndarray, rtol: float, what: str) -> None:
    """|a - b| <= rtol * (largest |a|): relative to the tensor's own scale, not elementwise."""
    scale = max(float(np.abs(a).max()), 1e-12)
    err = float(np.abs(a - b).max())
    assert err <= rtol * scale, f"{what}: max |diff| {err:.3g} > {rtol:g} x scale {scale:.3g}"


def test_logits_agree(twins):
    tm, mm, x, _, _ = twins
    lt, lm = torch_logits(tm, x), mlx_logits(mm, x)
    assert lt.shape == lm.shape == (*x.shape, tm.config.vocab_size)
    assert np.abs(lt).max() > 0.1  # logits of normal scale, so the bound below means something
    assert np.abs(lt - lm).max() <= 1e-4


def test_loss_and_gradients_agree(twins):
    tm, mm, x, y, _ = twins
    tm.zero_grad()
    loss_t = torch_model.loss_fn(tm, torch.from_numpy(x), torch.from_numpy(y))
    loss_t.backward()
    loss_m, grads_m = mnn.value_and_grad(mm, mlx_model.loss_fn)(mm, mx.array(x), mx.array(y))
    assert abs(loss_t.item() - loss_m.item()) <= 1e-5 * abs(loss_t.item())

    grads_m = dict(tree_flatten(grads_m))
    grads_t = {name: p.grad for name, p in tm.named_parameters()}
    assert grads_t.keys() == grads_m.keys()
    for name, g in grads_t.items():
        assert_close(g.numpy(), np.array(grads_m[name]), 1e-4, f"grad of {name}")


def test_one_adamw_step_leaves_same_weights(twins):
    tm, mm, x, y, ckpt = twins
    tm, mm = torch_ckpt.load_model(ckpt), mlx_ckpt.load_model(ckpt)  # fresh: the fixture is shared
    cfg = TrainConfig(lr=1e-3, weight_decay=0.1, grad_clip=1.0)
    step_t = torch_optim.make_train_step(tm, torch_optim.make_optimizer(tm, cfg), cfg)
    step_m = mlx_optim.make_train_step(mm, mlx_optim.make_optimizer(mm, cfg), cfg)
    step_t(torch.from_numpy(x)[None], torch.from_numpy(y)[None])
    loss_m, _ = step_m(mx.array(x)[None], mx.array(y)[None])
    mx.eval(loss_m)

    # Reference gradients, to tell signal from noise. Adam's first step moves a weight by
    # lr * g / (|g| + eps), whose sensitivity to a gradient error dg is lr * eps * dg / (|g| + eps)^2:
    # harmless for |g| >= 1e-5, but where the exact gradient is ~0 (the key bias: softmax ignores a
    # constant added to a row of scores; wte rows of tokens absent from the batch) rounding noise alone
    # decides the sign, and the twins may legitimately move such a weight by up to lr either way.
    ref = torch_ckpt.load_model(ckpt)
    torch_model.loss_fn(ref, torch.from_numpy(x), torch.from_numpy(y)).backward()
    grads = {name: p.grad.numpy() for name, p in ref.named_parameters()}
    before = ref.state_dict()
    after_m = dict(tree_flatten(mm.parameters()))
    for name, p in tm.state_dict().items():
        signal = np.abs(grads[name]) > 1e-5
        assert signal.any() or name.endswith("bias"), f"{name}: no gradient above noise"
        moved = np.abs(p.numpy() - before[name].numpy())
        assert moved[signal].min(initial=1.0) > 0.5 * cfg.lr, f"{name} did not take an Adam step"
        # where the gradient is signal, Adam's first step moves a weight by about lr: agree to 1e-3 of it
        diff = np.abs(p.numpy() - np.array(after_m[name]))
        assert diff[signal].max(initial=0.0) <= 1e-6, name
        assert diff.max() <= 2 * cfg.lr, name  # noise or not, no weight may move more than Adam allows


def test_transformers_gpt2_agrees(twins):
    transformers = pytest.importorskip("transformers")
    tm, _, x, _, ckpt = twins
    hf = transformers.GPT2LMHeadModel.from_pretrained(ckpt).eval()
    with torch.no_grad():
        hf_logits = hf(torch.from_numpy(x)).logits.numpy()
    assert np.abs(hf_logits - torch_logits(tm, x)).max() <= 1e-4


def test_mlx_lm_gpt2_agrees(twins):
    mlx_lm_utils = pytest.importorskip("mlx_lm.utils")
    _, mm, x, _, ckpt = twins
    loaded = mlx_lm_utils.load_model(ckpt)
    theirs = loaded[0] if isinstance(loaded, tuple) else loaded
    assert np.abs(np.array(theirs(mx.array(x))) - mlx_logits(mm, x)).max() <= 1e-4
