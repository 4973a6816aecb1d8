"""The training loop in PyTorch. Twin: jai_mlx/train.py; `diff` the two to see only framework differences.

A run lives in one out dir:

    <out>/ckpt/            the latest checkpoint, replaced atomically: a model any GPT-2 reader opens,
                           plus train_state/ for --resume (jai/train_state.py)
    <out>/metrics.jsonl    one line per step and per evaluation, flushed as written

Each step draws grad_accum batches from the shared sampler (jai/dataset.py, so both twins see the same
batches), sets the learning rate for its place in the schedule and runs the step from optim.py. The
hot loop reads the device once per step (loss and grad norm, for the progress bar, the log and the
NaN check) and draws the next batch before it does, so the host works while the device does.

Resuming restores the weights, Adam's moments and step count, the step (the schedule), the sampler
and the dropout RNG: a run interrupted at any point (`kill -9` included) and resumed from its last
checkpoint ends with the same weights as one never interrupted, on the same backend and device. The
state is shared with the MLX twin, so a run may also continue there (dropout's RNG cannot cross).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm import tqdm

from jai import train_state, weights
from jai.config import GPTConfig
from jai.dataset import BatchSampler
from jai.train_config import TrainConfig, learning_rate
from jai.train_state import MOMENTS, RunPlan, TrainingDiverged, TrainState
from jai.weights import CheckpointError
from jai_torch import checkpoint
from jai_torch import device as devices
from jai_torch.model import GPT, loss_fn
from jai_torch.optim import make_optimizer, make_train_step, set_learning_rate

WRITER = checkpoint.WRITER
RNG_KIND = "torch"

Batch = tuple[torch.Tensor, torch.Tensor]


def to_device(x: np.ndarray, y: np.ndarray, dev: torch.device) -> Batch:
    return torch.from_numpy(x).to(dev, non_blocking=True), torch.from_numpy(y).to(dev, non_blocking=True)


def next_batch(sampler: BatchSampler, accum: int, dev: torch.device) -> Batch:
    """`accum` batches from the shared sampler, stacked [grad_accum, B, T] on the device."""
    xs, ys = zip(*(sampler.next_batch() for _ in range(accum)), strict=True)
    return to_device(np.stack(xs), np.stack(ys), dev)


def build_model(plan: RunPlan, cfg: TrainConfig, dev: torch.device) -> GPT:
    """A fresh model, or the weights of the checkpoint a run resumes or starts from (kept in float32)."""
    model = GPT(plan.model_config, seed=cfg.seed)
    source = plan.ckpt_dir if plan.resume else plan.init_from
    if source is not None:
        _, tensors = checkpoint.load_tensors(source)
        model.load_state_dict(checkpoint.from_contract(tensors), strict=True)
    # bfloat16 runs keep float32 weights and compute under autocast (optim.py)
    model.to(device=dev, dtype=torch.float32)
    model.train()
    return model


def optimizer_moments(model: GPT, optimizer: torch.optim.AdamW) -> tuple[int, dict[str, np.ndarray]]:
    """Adam's step count and moments, {exp_avg.<name>: float32 array in the model's layout}."""
    steps, moments = set(), {}
    for name, p in model.named_parameters():
        state = optimizer.state.get(p, {})
        steps.add(int(state["step"]) if state else 0)
        for m in MOMENTS:
            t = state.get(m)
            moments[f"{m}.{name}"] = (
                t.detach().to("cpu", torch.float32).numpy()
                if t is not None
                else np.zeros(p.shape, np.float32)
            )
    if len(steps) != 1:
        raise RuntimeError(f"optimizer step counts differ between parameters: {sorted(steps)}")
    return steps.pop(), moments


def load_moments(model: GPT, optimizer: torch.optim.AdamW, moments: dict[str, np.ndarray], step: int) -> None:
    """The inverse of `optimizer_moments`: Adam continues as if it had never stopped."""
    state = optimizer.state_dict()  # its params are numbered in param_groups order
    order = [p for group in optimizer.param_groups for p in group["params"]]
    index = {id(p): i for i, p in enumerate(order)}
    state["state"] = {
        index[id(p)]: {
            "step": torch.tensor(float(step), dtype=torch.float32),
            **{m: torch.from_numpy(moments[f"{m}.{name}"]) for m in MOMENTS},
        }
        for name, p in model.named_parameters()
    }
    optimizer.load_state_dict(state)  # moves each moment to its parameter's device and dtype


def rng_state(dev: torch.device) -> dict[str, Any]:
    """The dropout RNG, as JSON: the CPU generator's state, and the GPU's when training on one."""
    state = {"kind": RNG_KIND, "cpu": _b64(torch.get_rng_state())}
    if dev.type == "cuda":
        state["cuda"] = _b64(torch.cuda.get_rng_state(dev))
    elif dev.type == "mps":
        state["mps"] = _b64(torch.mps.get_rng_state())
    return state


def set_rng_state(state: dict[str, Any], seed: int, dev: torch.device) -> bool:
    """Restore an RNG state this twin wrote (True); anything else reseeds from `seed` (False)."""
    if state.get("kind") != RNG_KIND or "cpu" not in state:
        torch.manual_seed(seed)
        return False
    torch.set_rng_state(_unb64(state["cpu"]))
    # a GPU generator the checkpoint lacks (it was written on another device) is seeded instead
    if dev.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(_unb64(state["cuda"]), dev)
    elif dev.type == "cuda":
        torch.cuda.manual_seed(seed)
    elif dev.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(_unb64(state["mps"]))
    elif dev.type == "mps":
        torch.mps.manual_seed(seed)
    return True


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)


def save(plan: RunPlan, model: GPT, optimizer: torch.optim.AdamW, state: TrainState) -> None:
    """Model and training state into <out>/ckpt, in one atomic directory replacement."""
    state.optimizer_step, moments = optimizer_moments(model, optimizer)
    tensors = checkpoint.to_contract(model, torch.float32)
    train_state.write_training_checkpoint(
        plan.ckpt_dir,
        WRITER,
        lambda p: save_file(tensors, p, metadata=weights.METADATA),
        state,
        moments,
        plan.tokenizer,
    )


def evaluate(model: GPT, batches: list[Batch], cfg: TrainConfig) -> float:
    """Mean loss over the fixed validation batches: eval mode (no dropout), no gradients."""
    model.eval()
    dev = model.wte.weight.device
    with torch.no_grad(), torch.autocast(dev.type, torch.bfloat16, enabled=cfg.dtype == "bfloat16"):
        total = sum(loss_fn(model, x, y) for x, y in batches)
    model.train()
    return float(total.item()) / len(batches)


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    model_cfg: GPTConfig | None = None,
    train_cfg: TrainConfig | None = None,
    device: str = "auto",
    resume: bool = False,
    init_from: str | Path | None = None,
    max_seconds: float | None = None,
    stop_at: int | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train on `data_dir` (from `jai prepare`) into `out_dir`; return a summary of the run.

    `model_cfg` gives the shape of a new model (its vocabulary comes from the data); `train_cfg` the
    hyperparameters (None: the defaults, or the checkpoint's own when resuming). `resume` continues
    <out>/ckpt exactly; `init_from` starts a new run from another checkpoint's weights. `max_seconds`
    bounds this invocation's training time: the run stops after the step that crosses it, evaluates and
    saves a checkpoint to resume from. `stop_at` stops the same way after that step (the schedule still
    runs to max_steps), as if the run had been interrupted there. Raises TrainingDiverged when the loss
    stops being finite, keeping the last good checkpoint.
    """
    log = log or tqdm.write
    plan = train_state.plan_run(data_dir, out_dir, model_cfg, train_cfg, resume, init_from)
    cfg, resumed = plan.train_config, plan.resume
    name = devices.resolve_device(device)
    dtype = devices.default_dtype(name, cfg.dtype)
    if dtype == "float32":
        devices.set_true_fp32()
    dev = devices.use_device(name)
    for note in plan.notes:
        log(note)

    model = build_model(plan, cfg, dev)
    optimizer = make_optimizer(model, cfg)
    block = model.config.block_size
    sampler = BatchSampler(plan.train_tokens, cfg.batch_size, block, cfg.seed)
    if resumed is not None:
        load_moments(model, optimizer, plan.moments, resumed.optimizer_step)
        try:
            sampler.load_state_dict(resumed.sampler)
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(
                f"{plan.ckpt_dir / train_state.STATE_DIR}: cannot resume the sampler: {e}"
            ) from None
        restored = set_rng_state(resumed.rng, cfg.seed + resumed.step, dev)
        if not restored and model.config.dropout > 0:
            log(f"dropout RNG reseeded: {resumed.writer} wrote the checkpoint; its RNG does not carry over")
    else:
        torch.manual_seed(cfg.seed)
    step_fn = make_train_step(model, optimizer, cfg)
    val_sampler = BatchSampler(plan.val_tokens, cfg.batch_size, block, cfg.seed)
    val_batches = [to_device(x, y, dev) for x, y in val_sampler.eval_batches(cfg.eval_batches)]

    state = resumed or TrainState(0, 0, cfg, model.config, {}, tokenizer_sha256=plan.tokenizer_sha256)
    state.train_config, state.writer, state.device, state.dtype = cfg, WRITER, name, dtype
    start, elapsed_before, saved_step = state.step, state.elapsed_seconds, resumed and resumed.step
    tokens_per_step = cfg.grad_accum * cfg.batch_size * block
    metrics = train_state.MetricsLog(plan.metrics_path, start if resumed else None)
    metrics.write(
        {
            "event": "resume" if resumed else "start",
            "step": start,
            "backend": WRITER,
            "device": name,
            "dtype": dtype,
        }
    )
    log(
        f"{devices.describe(name)}, {dtype}: {model.config.num_params():,} parameters, "
        f"{tokens_per_step:,} tokens/step, {'resuming at' if resumed else 'starting from'} step {start}"
    )
    initial_val_loss = None
    if resumed is None and cfg.max_steps > 0:  # nanoGPT's step-0 evaluation: the untrained baseline
        initial_val_loss = evaluate(model, val_batches, cfg)
        metrics.write({"step": 0, "val_loss": initial_val_loss, "elapsed": 0.0})
        log(f"step 0: val loss {initial_val_loss:.4f} (untrained)")
    bar = tqdm(total=cfg.max_steps, initial=start, unit="step", desc=WRITER, disable=not progress)
    stopped = "max_steps"
    t_start = t_last = time.perf_counter()
    try:
        if state.step < cfg.max_steps:
            x, y = next_batch(sampler, cfg.grad_accum, dev)
            after = sampler.state_dict()
        while state.step < cfg.max_steps:
            lr = learning_rate(state.step, cfg)
            set_learning_rate(optimizer, lr)
            loss, norm = step_fn(x, y)
            sampler_state = after  # the sampler as this step leaves it, for a checkpoint after it
            if state.step + 1 < cfg.max_steps:  # the host draws the next batch while the device works
                x, y = next_batch(sampler, cfg.grad_accum, dev)
                after = sampler.state_dict()
            loss, norm = torch.stack((loss, norm)).tolist()  # the one read of the device per step
            now = time.perf_counter()
            step = state.step + 1
            if not train_state.finite(loss, norm):
                metrics.write({"step": step, "event": "diverged", "loss": str(loss), "grad_norm": str(norm)})
                last = f"{state.loss:.4f} at step {state.step}" if state.loss is not None else "none"
                kept = (
                    f"the last good checkpoint, {plan.ckpt_dir} (step {saved_step}), is kept"
                    if saved_step is not None
                    else "no checkpoint had been written yet"
                )
                raise TrainingDiverged(
                    f"training diverged at step {step}: loss {loss}, grad norm {norm} (last finite loss "
                    f"{last}); this step was not saved and {kept}"
                )
            tok_s = tokens_per_step / max(now - t_last, 1e-9)
            state.step, state.loss, state.sampler = step, loss, sampler_state
            state.tokens_seen += tokens_per_step
            state.elapsed_seconds = elapsed_before + now - t_start
            metrics.write(
                {
                    "step": step,
                    "loss": loss,
                    "lr": lr,
                    "grad_norm": norm,
                    "tokens": state.tokens_seen,
                    "elapsed": round(state.elapsed_seconds, 4),
                    "tok_s": round(tok_s, 1),
                }
            )
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tok_s:,.0f}", refresh=False)
            bar.update()
            out_of_time = max_seconds is not None and now - t_start >= max_seconds
            paused = out_of_time or step == stop_at
            last_step = step == cfg.max_steps or paused
            if step % cfg.eval_interval == 0 or last_step:
                state.val_loss = evaluate(model, val_batches, cfg)
                if state.best_val_loss is None or state.val_loss < state.best_val_loss:
                    state.best_val_loss = state.val_loss
                metrics.write(
                    {"step": step, "val_loss": state.val_loss, "elapsed": round(state.elapsed_seconds, 4)}
                )
                log(f"step {step}: train loss {loss:.4f}, val loss {state.val_loss:.4f}")
            if step % cfg.ckpt_interval == 0 or last_step:
                state.rng = rng_state(dev)
                save(plan, model, optimizer, state)
                saved_step = step
            if paused:
                stopped = "max_seconds" if out_of_time else "stop_at"
                log(f"stopping at step {step} after {now - t_start:.1f}s ({stopped}); --resume continues")
                break
            t_last = time.perf_counter()  # evaluation and saving do not count against tokens/sec
    finally:
        bar.close()
        metrics.close()
    seconds = time.perf_counter() - t_start
    return {
        "backend": WRITER,
        "device": devices.describe(name),
        "dtype": dtype,
        "start_step": start,
        "step": state.step,
        "stopped": stopped,
        "loss": state.loss,
        "initial_val_loss": initial_val_loss,
        "val_loss": state.val_loss,
        "best_val_loss": state.best_val_loss,
        "tokens_seen": state.tokens_seen,
        "elapsed_seconds": state.elapsed_seconds,
        "tokens_per_sec": (state.step - start) * tokens_per_step / max(seconds, 1e-9),
        "ckpt": str(plan.ckpt_dir),
        "metrics": str(plan.metrics_path),
    }
