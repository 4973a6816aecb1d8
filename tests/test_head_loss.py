"""The fused head + cross-entropy (jai_*/head_loss.py): the loss and gradients of the unfused head and
F.cross_entropy, in both twins and against transformers' GPT-2 loss, over several chunks, with IGNORE
targets; and rows left out under --mask-prompt never reach the head."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mnn
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jai.config import GPTConfig
from jai.dataset import IGNORE
from jai.training.target_rows import target_rows
from jai_mlx import checkpoint as mlx_ckpt
from jai_mlx import head_loss as mlx_head
from jai_mlx import model as mlx_model
from jai_torch import checkpoint as torch_ckpt
from jai_torch import head_loss as torch_head
from jai_torch import model as torch_model

ROWS, WIDTH, VOCAB = 2500, 24, 97  # two whole chunks of 1,024 rows and a part of one (the MLX twin: more)


def problem(ignored: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hidden states [ROWS, WIDTH], a head [VOCAB, WIDTH] and targets with a share `ignored` of IGNORE."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((ROWS, WIDTH)).astype(np.float32)
    w = (rng.standard_normal((VOCAB, WIDTH)) * 0.5).astype(np.float32)
    y = rng.integers(0, VOCAB, ROWS)
    y[rng.random(ROWS) < ignored] = IGNORE
    return h, w, y


def reference(h: np.ndarray, w: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Loss, dL/dh and dL/dw of the unfused head and F.cross_entropy, in float64."""
    th = torch.tensor(h, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(th @ tw.T, torch.from_numpy(y), ignore_index=IGNORE)
    loss.backward()
    return loss.item(), th.grad.numpy(), tw.grad.numpy()


def torch_fused(h: np.ndarray, w: np.ndarray, y: np.ndarray, rows: np.ndarray | None) -> tuple:
    th = torch.tensor(h, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    loss = torch_head.linear_cross_entropy(
        th, tw, torch.from_numpy(y), None if rows is None else torch.from_numpy(rows)
    )
    loss.backward()
    return loss.item(), th.grad.numpy(), tw.grad.numpy()


def mlx_fused(h: np.ndarray, w: np.ndarray, y: np.ndarray, rows: np.ndarray | None) -> tuple:
    def loss_of(h: mx.array, w: mx.array) -> mx.array:
        return mlx_head.linear_cross_entropy(h, w, mx.array(y), None if rows is None else mx.array(rows))

    loss, (gh, gw) = mx.value_and_grad(loss_of, argnums=(0, 1))(mx.array(h), mx.array(w))
    return loss.item(), np.array(gh), np.array(gw)


FUSED = {"torch": torch_fused, "mlx": mlx_fused}


def assert_close(a: np.ndarray, b: np.ndarray, what: str, rtol: float = 1e-5) -> None:
    scale = max(float(np.abs(b).max()), 1e-12)
    assert float(np.abs(a - b).max()) <= rtol * scale, what


@pytest.mark.parametrize("twin", FUSED)
@pytest.mark.parametrize("ignored", [0.0, 0.7])
@pytest.mark.parametrize("select", [False, True], ids=["all rows", "target rows"])
def test_fused_loss_and_gradients_equal_the_unfused(twin, ignored, select):
    h, w, y = problem(ignored)
    rows = target_rows(y[None], multiple=64) if select else None  # 64: some IGNORE rows still computed
    loss, gh, gw = FUSED[twin](h, w, y, rows)
    ref_loss, ref_gh, ref_gw = reference(h, w, y)
    assert abs(loss - ref_loss) <= 1e-5 * ref_loss
    assert_close(gw, ref_gw, "dL/dw")
    assert_close(gh, ref_gh, "dL/dh")
    assert np.abs(ref_gh).max() > 1e-4  # gradients of normal scale, so the bounds above mean something


@pytest.mark.parametrize("twin", FUSED)
def test_rows_left_out_never_reach_the_head(twin):
    # Prompt rows whose hidden states are NaN: any arithmetic on them (even a multiply by 0) would make
    # the loss NaN, so a finite loss equal to the reference proves the head never computed them.
    h, w, y = problem(ignored=0.7)
    poisoned = h.copy()
    poisoned[y == IGNORE] = np.nan
    loss, gh, gw = FUSED[twin](poisoned, w, y, target_rows(y[None]))
    ref_loss, ref_gh, ref_gw = reference(h, w, y)
    assert abs(loss - ref_loss) <= 1e-5 * ref_loss
    assert_close(gw, ref_gw, "dL/dw")
    assert np.all(gh[y == IGNORE] == 0.0)  # no gradient for what the loss ignores
    assert_close(gh[y != IGNORE], ref_gh[y != IGNORE], "dL/dh")


@pytest.mark.parametrize("twin", FUSED)
def test_no_target_at_all_gives_zero_loss_and_gradients(twin):
    h, w, y = problem(ignored=1.0)
    loss, gh, gw = FUSED[twin](h, w, y, target_rows(y[None]))
    assert loss == 0.0 and not gh.any() and not gw.any()


def test_target_rows_puts_targets_first_and_pads_with_ignored_rows():
    y = np.full((2, 2, 4), IGNORE)
    y[0, 0, 1], y[0, 1, 3], y[1, 1, 0] = 5, 6, 7  # micro-batch 0: flat rows 1 and 7; 1: flat row 4
    assert target_rows(y).tolist() == [[1, 7], [4, 0]]  # as many as the fullest micro-batch
    padded = target_rows(y, multiple=3)
    assert padded.tolist() == [[1, 7, 0], [4, 0, 1]]  # the padding is rows whose target is IGNORE
    assert target_rows(y, multiple=100).shape == (2, 8)  # never more than every row
    assert target_rows(np.full((2, 4), IGNORE)).shape == (1,)  # no target: one IGNORE row, loss 0


def test_bfloat16_fused_loss_matches_the_unfused_head_under_autocast():
    cfg = GPTConfig(vocab_size=300, block_size=32, n_layer=1, n_head=2, n_embd=32)
    model = torch_model.GPT(cfg, seed=3)
    x, y = torch.randint(0, 300, (4, 32)), torch.randint(0, 300, (4, 32))
    grads = []
    for loss_of in (torch_model.loss_fn, lambda m, x, y: torch_model.cross_entropy(m(x), y)):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_of(model, x, y)
        loss.backward()
        grads.append((loss.item(), model.wte.weight.grad.clone(), model.h[0].mlp.c_fc.weight.grad.clone()))
    (fused, *g_fused), (unfused, *g_unfused) = grads
    assert abs(fused - unfused) <= 1e-3 * unfused
    for a, b in zip(g_fused, g_unfused, strict=True):
        assert_close(a.numpy(), b.numpy(), "bf16 gradient", rtol=2e-2)


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    cfg = GPTConfig(vocab_size=400, block_size=64, n_layer=2, n_head=2, n_embd=48)
    ckpt = tmp_path_factory.mktemp("ckpt") / "model"
    torch_ckpt.save_model(torch_model.GPT(cfg, seed=11), ckpt)
    return ckpt


def test_masked_loss_and_gradients_agree_with_transformers_gpt2(gpt2_dir):
    transformers = pytest.importorskip("transformers")
    hf = transformers.GPT2LMHeadModel.from_pretrained(gpt2_dir).eval()
    ours = torch_ckpt.load_model(gpt2_dir)
    rng = np.random.default_rng(1)
    ids = torch.from_numpy(rng.integers(0, 400, (3, 64)))
    labels = ids.clone()
    labels[:, :40] = -100  # a prompt: transformers' ignore index
    out = hf(ids, labels=labels)  # transformers shifts: logits[:, t] against labels[:, t + 1]
    out.loss.backward()
    hf_loss = out.loss.item()
    targets = labels[:, 1:].masked_fill(labels[:, 1:] == -100, IGNORE)
    loss = torch_model.masked_loss_fn(ours, ids[:, :-1], targets)
    loss.backward()
    assert abs(loss.item() - hf_loss) <= 1e-5 * hf_loss
    assert_close(ours.wte.weight.grad.numpy(), hf.transformer.wte.weight.grad.numpy(), "wte", 1e-4)
    assert_close(ours.ln_f.weight.grad.numpy(), hf.transformer.ln_f.weight.grad.numpy(), "ln_f", 1e-4)


def test_twins_agree_on_the_masked_loss_of_a_model(gpt2_dir):
    tm, mm = torch_ckpt.load_model(gpt2_dir), mlx_ckpt.load_model(gpt2_dir)
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 400, (4, 64)), rng.integers(0, 400, (4, 64))
    y[:, :50] = IGNORE
    loss_t = torch_model.masked_loss_fn(tm, torch.from_numpy(x), torch.from_numpy(y))
    loss_t.backward()
    loss_m, grads_m = mnn.value_and_grad(mm, mlx_model.masked_loss_fn)(mm, mx.array(x), mx.array(y))
    assert abs(loss_t.item() - loss_m.item()) <= 1e-5 * loss_t.item()
    assert_close(np.array(grads_m["wte"]["weight"]), tm.wte.weight.grad.numpy(), "wte", 1e-4)


def test_the_loss_alone_for_evaluation_equals_the_fused_loss():
    h, w, y = problem(ignored=0.5)
    rows = target_rows(y[None])
    ref_loss = reference(h, w, y)[0]
    alone_t = torch_head.linear_cross_entropy(
        torch.from_numpy(h), torch.from_numpy(w), torch.from_numpy(y), torch.from_numpy(rows), gradient=False
    )
    alone_m = mlx_head.linear_cross_entropy(
        mx.array(h), mx.array(w), mx.array(y), mx.array(rows), gradient=False
    )
    for loss in (alone_t.item(), alone_m.item(), torch_fused(h, w, y, rows)[0], mlx_fused(h, w, y, rows)[0]):
        assert abs(loss - ref_loss) <= 1e-5 * ref_loss
