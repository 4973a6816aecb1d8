"""The MLX runners: JAI's MLX twin and mlx-lm's gpt2, each timed in its own worker process.

Imported only inside a worker (benchmarks/worker.py). `jai_mlx` comes first, before `mlx.core`, so both
runners, the twin and the peer, get the same fast BLAS on Linux (jai_mlx/blas.py).
"""

from __future__ import annotations

# The fast-BLAS preload must run before anything imports mlx.core; the split keeps import sorting
# (ruff's isort rules) from moving it below the mlx imports, which silently keeps the slow BLAS.
import jai_mlx  # noqa: F401

# isort: split
from functools import partial
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

from jai.benchmarks import flops
from jai.benchmarks.rounds import alternate
from jai.benchmarks.stats import clock, decode_rates, summarize
from jai.config import GPTConfig
from jai.train_config import TrainConfig, learning_rate
from jai_mlx.blas import blas_info
from jai_mlx.checkpoint import load_model as load_twin
from jai_mlx.model import cross_entropy
from jai_mlx.optim import make_optimizer, make_train_step, set_learning_rate

DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16}


def device_name() -> str:
    if mx.metal.is_available():
        return "gpu"
    cuda = getattr(mx, "cuda", None)
    return "gpu" if cuda is not None and cuda.is_available() else "cpu"


def setup(spec: dict[str, Any]) -> dict[str, Any]:
    device = spec.get("device", "cpu")
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
    return {"blas": blas_info(measure=False), "mlx_device": str(mx.default_device())}


def reset_peak() -> None:
    mx.reset_peak_memory()


def peak_memory() -> int:
    return int(mx.get_peak_memory())


def load(runner: str, ckpt: str, dtype: str) -> nn.Module:
    if runner == "jai_mlx":
        return load_twin(ckpt, DTYPES[dtype])
    if runner == "mlx_lm":
        from mlx_lm.utils import load_model

        model, _ = load_model(Path(ckpt))
        model.set_dtype(DTYPES[dtype])
        mx.eval(model.parameters())
        return model
    raise ValueError(f"not an MLX runner: {runner}")


def _peer_step(model: nn.Module, optimizer: optim.Optimizer, tc: TrainConfig):
    """mlx-lm's trainer step (tuner/trainer.py): value_and_grad + optimizer.update in one mx.compile over
    model, optimizer and random state; with the same loss, clipping and AdamW as the twin."""

    def loss_fn(model: nn.Module, x: mx.array, y: mx.array) -> mx.array:
        return cross_entropy(model(x), y)

    loss_and_grad = nn.value_and_grad(model, loss_fn)
    state = [model.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x: mx.array, y: mx.array) -> tuple[mx.array, mx.array]:
        loss, grads = loss_and_grad(model, x[0], y[0])
        grads, norm = optim.clip_grad_norm(grads, tc.grad_clip)
        optimizer.update(model, grads)
        return loss, norm

    return step


def make_step(runner: str, model: nn.Module, tc: TrainConfig):
    optimizer = make_optimizer(model, tc)  # the same AdamW (two groups, bias correction) for both
    step = make_train_step(model, optimizer, tc) if runner == "jai_mlx" else _peer_step(model, optimizer, tc)

    def run(x: mx.array, y: mx.array) -> mx.array:
        loss, norm = step(x, y)
        mx.eval(loss, norm, model.parameters(), optimizer.state)
        return loss

    return run, optimizer


def batch(cfg: GPTConfig, batch_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.integers(0, cfg.vocab_size, size=(1, batch_size, cfg.block_size + 1), dtype=np.int64)
    return xy[..., :-1].astype(np.int32), xy[..., 1:].astype(np.int32)


def time_gemms(gemms: list[flops.Gemm], dtype: str) -> dict[str, float]:
    """Seconds per call of each GEMM shape, best of two after a warm-up (the roof: the best it can do)."""
    dt = DTYPES[dtype]
    out: dict[str, float] = {}
    warm = mx.random.normal((512, 512)).astype(dt)
    mx.eval(warm @ warm)
    for g in gemms:
        a = mx.random.normal((g.m, g.k)).astype(dt)
        b = mx.random.normal((g.k, g.n)).astype(dt)
        mx.eval(a, b)
        best = float("inf")
        for _ in range(2):
            t = clock()
            mx.eval(a @ b)
            best = min(best, clock() - t)
        out[g.name] = best
    return out


def train(spec: dict[str, Any], progress) -> dict[str, Any]:
    cfg = GPTConfig(**spec["config"])
    B, T = spec["batch"], cfg.block_size
    tc = TrainConfig(batch_size=B, dtype=spec["dtype"], warmup_steps=0)
    model = load(spec["runner"], spec["ckpt"], spec["dtype"])
    run, _ = make_step(spec["runner"], model, tc)
    xn, yn = batch(cfg, B, spec["seed"])
    x, y = mx.array(xn), mx.array(yn)
    losses, window_s = [], []
    reset_peak()
    for _ in range(spec["warmup"]):
        losses.append(run(x, y).item())
        progress()
    for _ in range(spec["windows"]):
        t = clock()
        for _ in range(spec["steps_per_window"]):
            loss = run(x, y)
        losses.append(loss.item())
        window_s.append(clock() - t)
        progress()
    tokens = B * T * spec["steps_per_window"]
    out: dict[str, Any] = {
        "tokens_per_s": summarize([tokens / s for s in window_s]),
        "step_s": summarize([s / spec["steps_per_window"] for s in window_s]),
        "losses": losses,
        "peak_bytes": peak_memory(),
    }
    if spec.get("roof"):
        gemms = flops.train_gemms(cfg, B * T)
        out["gemm_s"] = time_gemms(gemms, spec["dtype"])
        out["roof"] = flops.roof(out["gemm_s"], gemms)
    return out


def rounds(spec: dict[str, Any], progress) -> dict[str, Any]:
    """Every runner of spec["runners"] in this process, timed in alternating rounds (benchmarks/rounds.py),
    with the GEMM roof timed in every round. The first runner is the twin the ratios are taken against."""
    cfg = GPTConfig(**spec["config"])
    B, T = spec["batch"], cfg.block_size
    tc = TrainConfig(batch_size=B, dtype=spec["dtype"], warmup_steps=0)
    xn, yn = batch(cfg, B, spec["seed"])
    x, y = mx.array(xn), mx.array(yn)
    steps = {}
    for runner in spec["runners"]:
        run, _ = make_step(runner, load(runner, spec["ckpt"], spec["dtype"]), tc)
        steps[runner] = lambda run=run: run(x, y).item()
    gemms = flops.train_gemms(cfg, B * T)
    out = alternate(
        steps,
        spec["rounds"],
        spec["warmup"],
        spec["steps_per_window"],
        B * T,
        roof=lambda: flops.roof(time_gemms(gemms, spec["dtype"]), gemms),
        progress=progress,
        flops_per_token=flops.train_flops_per_token(cfg),
    )
    out["skipped"] = {}
    return out


def infer(spec: dict[str, Any], progress) -> dict[str, Any]:
    from jai.inference.sampling import SamplingConfig
    from jai_mlx.generate import generate_tokens

    cfg = GPTConfig(**spec["config"])
    B, P, K = spec["batch"], spec["prompt_len"], spec["new_tokens"]
    model = load(spec["runner"], spec["ckpt"], spec["dtype"])
    model.eval()
    rng = np.random.default_rng(spec["seed"])
    prompts = rng.integers(0, cfg.vocab_size, size=(B, P)).tolist()
    first_s, total_s, n_new = [], [], []
    reset_peak()

    if spec["runner"] == "jai_mlx":

        def once(k: int) -> int:
            out = generate_tokens(model, prompts, SamplingConfig(temperature=0.0, max_new_tokens=k))
            return sum(len(o) for o in out)

    else:  # mlx_lm: generate_step, batch 1 (its batched path needs a tokenizer)
        from mlx_lm.generate import generate_step

        if B != 1:
            raise ValueError("the mlx_lm runner decodes batch 1 only")

        def once(k: int) -> int:
            n = 0
            for _token, _ in generate_step(
                mx.array(prompts[0]), model, max_tokens=k, sampler=lambda lp: mx.argmax(lp, axis=-1)
            ):
                n += 1
            return n

    once(2)  # warm-up
    for _ in range(spec["repeats"]):
        t = clock()
        once(1)
        first_s.append(clock() - t)
        t = clock()
        n_new.append(once(K))
        total_s.append(clock() - t)
        progress()
    decode = decode_rates(B, K, first_s, total_s)
    return {
        "prefill_tokens_per_s": summarize([B * P / s for s in first_s]),
        "decode_tokens_per_s": summarize(decode),
        "first_token_s": summarize(first_s),
        "new_tokens": n_new,
        "peak_bytes": peak_memory(),
    }


def curve(spec: dict[str, Any], progress) -> dict[str, Any]:
    from jai.benchmarks.data import sampler

    cfg = GPTConfig(**spec["config"])
    tc = TrainConfig(
        batch_size=spec["batch"], max_steps=spec["steps"], warmup_steps=spec["lr_warmup"], dtype=spec["dtype"]
    )
    model = load(spec["runner"], spec["ckpt"], spec["dtype"])
    run, optimizer = make_step(spec["runner"], model, tc)
    batches = sampler(spec, cfg)
    losses, times = [], []
    start = clock()
    for step in range(spec["steps"]):
        set_learning_rate(optimizer, learning_rate(step, tc))
        xn, yn = batches.next_batch()
        losses.append(run(mx.array(xn[None]), mx.array(yn[None])).item())
        times.append(clock() - start)
        progress()
    return {"losses": losses, "seconds": times, "peak_bytes": peak_memory()}


# --- where the time goes: each component of the twin, forward and backward, on its own ----------------


def _time(fn, *args, repeats: int = 3) -> float:
    mx.eval(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t = clock()
        mx.eval(fn(*args))
        best = min(best, clock() - t)
    return best


def profile(spec: dict[str, Any], progress) -> dict[str, Any]:
    """Per-component time of one training step of the twin, each piece timed alone with mx.eval.

    fwd: the forward of the piece; fwd+bwd: value and gradient with respect to its input and its
    parameters (what the training step computes for it). `per_step` multiplies by how often the piece
    runs in one step (n_layer for the block's pieces).
    """
    from jai_mlx.model import GPT, gelu_new

    cfg = GPTConfig(**spec["config"])
    B, T, d, L = spec["batch"], cfg.block_size, cfg.n_embd, cfg.n_layer
    model = GPT(cfg)
    blk = model.h[0]
    key = mx.random.key(0)
    x = mx.random.normal((B, T, d), key=key)
    h4 = mx.random.normal((B, T, 4 * d), key=key)
    qkv = mx.random.normal((3, B, cfg.n_head, T, cfg.head_dim), key=key)
    idx = mx.random.randint(0, cfg.vocab_size, (B, T), key=key)
    logits = mx.random.normal((B, T, cfg.vocab_size), key=key)

    def grad_of(f, *args):
        """fwd+bwd of f(module params..., *args) summed to a scalar, w.r.t. the float inputs."""
        argnums = [i for i, a in enumerate(args) if mx.issubdtype(a.dtype, mx.floating)]
        return mx.grad(lambda *a: f(*a).astype(mx.float32).sum(), argnums=argnums)

    def sdpa(q, k, v):
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=1.0 / cfg.head_dim**0.5, mask="causal")

    def lin_grad(layer, inp):
        """Gradients w.r.t. the layer's parameters and its input, as the training step needs them."""

        def f(params, a):
            layer.update(params)
            return layer(a).astype(mx.float32).sum()

        g = mx.grad(f, argnums=(0, 1))
        return lambda a: g(layer.trainable_parameters(), a)

    pos = mx.arange(T)
    rows: list[tuple[str, int, Any, Any, str]] = [
        (
            "embedding (wte + wpe gather)",
            1,
            lambda: model.wte(idx) + model.wpe(pos),
            lambda: mx.grad(lambda w: (w[idx] + model.wpe.weight[pos]).sum())(model.wte.weight),
            "framework: gather, scatter-add backward",
        ),
        (
            "layernorm (ln_1, ln_2; ln_f)",
            2 * L + 1,
            lambda: blk.ln_1(x),
            lambda: lin_grad(blk.ln_1, x)(x),
            "framework: mx.fast.layer_norm",
        ),
        (
            "qkv matmul d->3d",
            L,
            lambda: blk.attn.c_attn(x),
            lambda: lin_grad(blk.attn.c_attn, x)(x),
            "BLAS GEMM",
        ),
        (
            "attention (sdpa, causal)",
            L,
            lambda: sdpa(qkv[0], qkv[1], qkv[2]),
            lambda: grad_of(sdpa, qkv[0], qkv[1], qkv[2])(qkv[0], qkv[1], qkv[2]),
            "framework: mx.fast.scaled_dot_product_attention (exp in softmax)",
        ),
        (
            "head split/merge (reshape, transpose)",
            L,
            lambda: blk.attn.c_attn(x).reshape(B, T, 3, cfg.n_head, cfg.head_dim).transpose(2, 0, 3, 1, 4),
            None,
            "ours: layout copies around sdpa",
        ),
        (
            "attn proj d->d",
            L,
            lambda: blk.attn.c_proj(x),
            lambda: lin_grad(blk.attn.c_proj, x)(x),
            "BLAS GEMM",
        ),
        ("mlp fc d->4d", L, lambda: blk.mlp.c_fc(x), lambda: lin_grad(blk.mlp.c_fc, x)(x), "BLAS GEMM"),
        (
            "gelu (tanh approx, gelu_new)",
            L,
            lambda: gelu_new(h4),
            lambda: grad_of(gelu_new, h4)(h4),
            "ours: compiled x*sigmoid(2z) form of GPT-2's tanh GELU (elementwise, framework kernels)",
        ),
        (
            "mlp proj 4d->d",
            L,
            lambda: blk.mlp.c_proj(h4),
            lambda: lin_grad(blk.mlp.c_proj, h4)(h4),
            "BLAS GEMM",
        ),
        ("residual adds", 2 * L, lambda: x + x, None, "framework: elementwise add"),
        (
            "head (tied, d->vocab)",
            1,
            lambda: model.wte.as_linear(x),
            lambda: mx.grad(lambda w, a: (a @ w.T).sum(), argnums=(0, 1))(model.wte.weight, x),
            "BLAS GEMM",
        ),
        (
            "loss (cross-entropy over vocab)",
            1,
            lambda: cross_entropy(logits, idx),
            lambda: mx.grad(lambda lg: cross_entropy(lg, idx))(logits),
            "framework: nn.losses.cross_entropy (logsumexp: exp over B*T*vocab)",
        ),
    ]
    out_rows = []
    for name, count, fwd, fwdbwd, owner in rows:
        f = _time(lambda fwd=fwd: fwd())
        fb = _time(lambda fwdbwd=fwdbwd: fwdbwd()) if fwdbwd is not None else f
        out_rows.append(
            {
                "component": name,
                "count": count,
                "fwd_s": f,
                "fwd_bwd_s": fb,
                "per_step_s": fb * count,
                "owner": owner,
            }
        )
        progress()
    # the optimizer update over every parameter, with gradients of the right shapes
    tc = TrainConfig(batch_size=B)
    opt = make_optimizer(model, tc)
    grads = nn.utils.tree_map(lambda p: mx.ones_like(p) * 1e-3, model.trainable_parameters())

    def update():
        clipped, _ = optim.clip_grad_norm(grads, tc.grad_clip)
        opt.update(model, clipped)
        return model.parameters(), opt.state

    u = _time(update)
    out_rows.append(
        {
            "component": "optimizer (clip + AdamW, all params)",
            "count": 1,
            "fwd_s": u,
            "fwd_bwd_s": u,
            "per_step_s": u,
            "owner": "framework: mlx.optimizers (uncompiled here)",
        }
    )
    progress()
    # the elementwise costs the framework charges, per element: what the table's big rows are made of
    n = B * T * 4 * d
    big = mx.random.normal((n,), key=key)
    rates = {}
    for name, fn in (
        ("add", lambda a: a + 1.0),
        ("exp", mx.exp),
        ("tanh", mx.tanh),
        ("erf", mx.erf),
        ("sigmoid", mx.sigmoid),
    ):
        rates[name] = n / _time(fn, big)
    gelu_alt = _gelu_alternatives(h4)
    return {
        "rows": out_rows,
        "elementwise_per_s": rates,
        "gelu_alternatives": gelu_alt,
        "batch": B,
        "peak_bytes": peak_memory(),
    }


def _gelu_alternatives(h: mx.array) -> dict[str, Any]:
    """nn.gelu_approx (tanh) against the model's gelu_new, the same function written with one sigmoid
    (0.5 * (1 + tanh z) = sigmoid(2z)), both compiled, forward + backward; and their largest difference."""
    from jai_mlx.model import gelu_new as via_sigmoid

    out = {}
    for name, f in (("nn.gelu_approx", nn.gelu_approx), ("x*sigmoid(2z)", via_sigmoid)):
        g = mx.compile(mx.grad(lambda a, f=f: f(a).sum()))
        fc = mx.compile(f)
        out[name] = {"fwd_s": _time(fc, h), "fwd_bwd_s": _time(lambda a, g=g, fc=fc: (fc(a), g(a)), h)}
    out["max_abs_diff"] = float(mx.max(mx.abs(nn.gelu_approx(h) - via_sigmoid(h))).item())
    return out


def init_checkpoint(spec: dict[str, Any], progress) -> dict[str, Any]:
    """Initialise once (this twin, GPT-2 init, seeded) and save: every runner loads these weights."""
    from jai_mlx.checkpoint import save_model
    from jai_mlx.model import GPT

    save_model(GPT(GPTConfig(**spec["config"]), seed=spec["seed"]), spec["ckpt"])
    return {"ckpt": spec["ckpt"]}


def env(spec: dict[str, Any], progress) -> dict[str, Any]:
    import mlx_lm  # noqa: F401 - its version, if installed

    out: dict[str, Any] = {
        "mlx": mx.__version__,
        "devices": ["cpu"] + (["gpu"] if device_name() == "gpu" else []),
    }
    try:
        import importlib.metadata as md

        out["mlx_lm"] = md.version("mlx-lm")
    except Exception:
        out["mlx_lm"] = None
    with mx.stream(mx.cpu):
        out["blas"] = blas_info(measure=True)
    if mx.metal.is_available():
        out["gpu_name"] = mx.metal.device_info().get("device_name")
    return out
