"""The PyTorch runners: JAI's PyTorch twin (eager, and compiled), transformers' GPT2LMHeadModel and a
nanoGPT-style reference (benchmarks/nanogpt_ref.py).

All load the same checkpoint directory, train with the same AdamW (two groups, decay on 2-D weights),
the same loss (mean cross-entropy over every position, from logits) and the same clipping, in the same
dtype, with the same number of threads. transformers runs its "sdpa" attention, as our twin does.
"""

from __future__ import annotations

import os
import resource  # noqa: F401  - imported early so a failing platform fails here, not mid-run
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from jai.benchmarks import flops
from jai.benchmarks.rounds import alternate
from jai.benchmarks.stats import clock, decode_rates, summarize
from jai.benchmarks.worker import rss_peak_bytes
from jai.config import GPTConfig
from jai.train_config import TrainConfig, learning_rate
from jai_torch.checkpoint import load_model as load_twin
from jai_torch.optim import make_optimizer, make_train_step, set_learning_rate

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def device_name() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def setup(spec: dict[str, Any]) -> dict[str, Any]:
    threads = spec.get("threads") or os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    return {"torch_threads": torch.get_num_threads(), "torch_device": spec.get("device", "cpu")}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_memory(device: str) -> int | None:
    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    if device == "mps":
        return int(torch.mps.driver_allocated_memory())
    return None  # CPU: the worker reports the process's peak RSS


def load(runner: str, ckpt: str, device: str) -> torch.nn.Module:
    if runner in ("jai_torch", "jai_torch_compiled"):
        return load_twin(ckpt, device=device, dtype=torch.float32)
    if runner == "nanogpt":
        from jai.benchmarks.nanogpt_ref import from_twin

        return from_twin(load_twin(ckpt, device=device, dtype=torch.float32))
    if runner == "transformers":
        from transformers import GPT2LMHeadModel

        model = GPT2LMHeadModel.from_pretrained(ckpt, attn_implementation="sdpa", dtype=torch.float32)
        return model.to(device)
    raise ValueError(f"not a PyTorch runner: {runner}")


def _logits(runner: str, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(input_ids=x, use_cache=False).logits if runner == "transformers" else model(x)


def _peer_step(
    runner: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, tc: TrainConfig, device: str
):
    """A peer's plain training step: forward to logits, the same loss, backward, clip, AdamW."""
    autocast = torch.autocast(device, dtype=torch.bfloat16) if tc.dtype == "bfloat16" else nullcontext()
    params = [p for p in model.parameters() if p.requires_grad]

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast:
            logits = _logits(runner, model, x[0])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y[0].reshape(-1))
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach(), norm

    return step


def make_step(runner: str, model: torch.nn.Module, tc: TrainConfig, device: str):
    model.train()
    optimizer = make_optimizer(model, tc)  # works for any module: decay on parameters with ndim >= 2
    if runner in ("jai_torch", "jai_torch_compiled"):
        step = make_train_step(model, optimizer, tc, compile=runner == "jai_torch_compiled")
    else:
        step = _peer_step(runner, model, optimizer, tc, device)

    def run(x: torch.Tensor, y: torch.Tensor) -> float:
        loss, _ = step(x, y)
        return float(loss.item())  # .item() waits for the device

    return run, optimizer


def batch(cfg: GPTConfig, batch_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.integers(0, cfg.vocab_size, size=(1, batch_size, cfg.block_size + 1), dtype=np.int64)
    return xy[..., :-1].astype(np.int32), xy[..., 1:].astype(np.int32)


def time_gemms(gemms: list[flops.Gemm], dtype: str, device: str) -> dict[str, float]:
    dt = DTYPES[dtype]
    out: dict[str, float] = {}
    with torch.no_grad():
        warm = torch.randn(512, 512, device=device, dtype=dt)
        _ = warm @ warm
        for g in gemms:
            a = torch.randn(g.m, g.k, device=device, dtype=dt)
            b = torch.randn(g.k, g.n, device=device, dtype=dt)
            best = float("inf")
            for _ in range(2):
                _sync(device)
                t = clock()
                _ = a @ b
                _sync(device)
                best = min(best, clock() - t)
            out[g.name] = best
    return out


def train(spec: dict[str, Any], progress) -> dict[str, Any]:
    cfg = GPTConfig(**spec["config"])
    device = spec.get("device", "cpu")
    B, T = spec["batch"], cfg.block_size
    tc = TrainConfig(batch_size=B, dtype=spec["dtype"], warmup_steps=0)
    model = load(spec["runner"], spec["ckpt"], device)
    run, _ = make_step(spec["runner"], model, tc, device)
    xn, yn = batch(cfg, B, spec["seed"])
    x, y = torch.from_numpy(xn).long().to(device), torch.from_numpy(yn).long().to(device)
    losses, window_s = [], []
    reset_peak(device)
    for _ in range(spec["warmup"]):
        losses.append(run(x, y))
        progress()
    for _ in range(spec["windows"]):
        t = clock()
        for _ in range(spec["steps_per_window"]):
            loss = run(x, y)
        window_s.append(clock() - t)
        losses.append(loss)
        progress()
    tokens = B * T * spec["steps_per_window"]
    out: dict[str, Any] = {
        "tokens_per_s": summarize([tokens / s for s in window_s]),
        "step_s": summarize([s / spec["steps_per_window"] for s in window_s]),
        "losses": losses,
        "peak_bytes": peak_memory(device),
    }
    if spec.get("roof"):
        gemms = flops.train_gemms(cfg, B * T)
        out["gemm_s"] = time_gemms(gemms, spec["dtype"], device)
        out["roof"] = flops.roof(out["gemm_s"], gemms)
    return out


def peak(spec: dict[str, Any], progress) -> dict[str, Any]:
    """One runner's training peak memory, alone in its process: the allocator's peak on a GPU; on the CPU
    the worker's peak RSS (benchmarks/worker.py), with the RSS before the first step beside it."""
    cfg = GPTConfig(**spec["config"])
    device = spec.get("device", "cpu")
    tc = TrainConfig(batch_size=spec["batch"], dtype=spec["dtype"], warmup_steps=0)
    run, _ = make_step(spec["runner"], load(spec["runner"], spec["ckpt"], device), tc, device)
    xn, yn = batch(cfg, spec["batch"], spec["seed"])
    x, y = torch.from_numpy(xn).long().to(device), torch.from_numpy(yn).long().to(device)
    rss_before = rss_peak_bytes()
    reset_peak(device)
    losses = []
    for _ in range(spec["steps"]):
        losses.append(run(x, y))
        progress()
    return {"losses": losses, "peak_bytes": peak_memory(device), "rss_before_bytes": rss_before}


def rounds(spec: dict[str, Any], progress) -> dict[str, Any]:
    """Every runner of spec["runners"] in this process, timed in alternating rounds (benchmarks/rounds.py),
    with the GEMM roof timed in every round. The first runner is the twin the ratios are taken against.
    A runner that cannot run here (e.g. the compiled twin without a C++ compiler) is left out, and why."""
    cfg = GPTConfig(**spec["config"])
    device = spec.get("device", "cpu")
    B, T = spec["batch"], cfg.block_size
    tc = TrainConfig(batch_size=B, dtype=spec["dtype"], warmup_steps=0)
    xn, yn = batch(cfg, B, spec["seed"])
    x, y = torch.from_numpy(xn).long().to(device), torch.from_numpy(yn).long().to(device)
    steps, first, skipped = {}, {}, {}
    for runner in spec["runners"]:
        try:
            run, _ = make_step(runner, load(runner, spec["ckpt"], device), tc, device)
            first[runner] = run(x, y)  # the first warm-up step (and, compiled, the compilation)
        except Exception as e:
            if runner == spec["runners"][0]:
                raise
            skipped[runner] = f"{type(e).__name__}: {e}"[:300]
            continue
        progress()
        steps[runner] = lambda run=run: run(x, y)
    gemms = flops.train_gemms(cfg, B * T)
    out = alternate(
        steps,
        spec["rounds"],
        spec["warmup"] - 1,
        spec["steps_per_window"],
        B * T,
        roof=lambda: flops.roof(time_gemms(gemms, spec["dtype"], device), gemms),
        progress=progress,
        flops_per_token=flops.train_flops_per_token(cfg),
    )
    for runner, loss in first.items():
        out["runners"][runner]["losses"].insert(0, loss)
    out["skipped"] = skipped
    return out


def infer(spec: dict[str, Any], progress) -> dict[str, Any]:
    cfg = GPTConfig(**spec["config"])
    device = spec.get("device", "cpu")
    B, P, K = spec["batch"], spec["prompt_len"], spec["new_tokens"]
    model = load(spec["runner"], spec["ckpt"], device)
    model.eval()
    rng = np.random.default_rng(spec["seed"])
    prompts = rng.integers(0, cfg.vocab_size, size=(B, P))
    reset_peak(device)

    if spec["runner"] == "jai_torch":
        from jai.inference.sampling import SamplingConfig
        from jai_torch.generate import generate_tokens

        prompt_list = prompts.tolist()

        def once(k: int) -> int:
            out = generate_tokens(model, prompt_list, SamplingConfig(temperature=0.0, max_new_tokens=k))
            return sum(len(o) for o in out)

    else:
        ids = torch.from_numpy(prompts).long().to(device)
        mask = torch.ones_like(ids)

        def once(k: int) -> int:
            with torch.inference_mode():
                out = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=k,
                    min_new_tokens=k,
                    do_sample=False,
                    use_cache=True,
                    pad_token_id=0,
                )
            return int(out.shape[0] * (out.shape[1] - P))

    first_s, total_s, n_new = [], [], []
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
        "peak_bytes": peak_memory(device),
    }


def curve(spec: dict[str, Any], progress) -> dict[str, Any]:
    from jai.benchmarks.data import sampler

    cfg = GPTConfig(**spec["config"])
    device = spec.get("device", "cpu")
    tc = TrainConfig(
        batch_size=spec["batch"], max_steps=spec["steps"], warmup_steps=spec["lr_warmup"], dtype=spec["dtype"]
    )
    model = load(spec["runner"], spec["ckpt"], device)
    run, optimizer = make_step(spec["runner"], model, tc, device)
    batches = sampler(spec, cfg)
    losses, times = [], []
    start = clock()
    for step in range(spec["steps"]):
        set_learning_rate(optimizer, learning_rate(step, tc))
        xn, yn = batches.next_batch()
        x = torch.from_numpy(xn[None]).long().to(device)
        y = torch.from_numpy(yn[None]).long().to(device)
        losses.append(run(x, y))
        times.append(clock() - start)
        progress()
    return {"losses": losses, "seconds": times, "peak_bytes": peak_memory(device)}


def init_checkpoint(spec: dict[str, Any], progress) -> dict[str, Any]:
    """Initialise once (this twin, GPT-2 init, seeded) and save: every runner loads these weights."""
    from jai_torch.checkpoint import save_model
    from jai_torch.model import GPT

    cfg = GPTConfig(**spec["config"])
    save_model(GPT(cfg, seed=spec["seed"]), spec["ckpt"])
    return {"ckpt": spec["ckpt"]}


def env(spec: dict[str, Any], progress) -> dict[str, Any]:
    import importlib.metadata as md

    devices = ["cpu"] + ([device_name()] if device_name() != "cpu" else [])
    out: dict[str, Any] = {
        "torch": torch.__version__,
        "devices": devices,
        "torch_threads": torch.get_num_threads(),
    }
    try:
        out["transformers"] = md.version("transformers")
    except md.PackageNotFoundError:
        out["transformers"] = None
    if torch.cuda.is_available():
        out["gpu_name"] = torch.cuda.get_device_name(0)
        out["bf16"] = torch.cuda.is_bf16_supported()
    keys = ("BLAS", "LAPACK", "MKL", "OpenMP", "CPU capability")
    out["build"] = [
        line.strip() for line in torch.__config__.show().splitlines() if any(k in line for k in keys)
    ]
    return out
