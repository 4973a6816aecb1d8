"""What training needs from MLX. Twin: jai_torch/train.py; `diff` the two to see only framework differences.

The loop itself is jai/training/loop.py, written once; this file is its `Trainer` for MLX: the model and
optimizer on a device, one optimizer step, evaluation, Adam's moments and the RNG in and out of the
shared training-state format (jai/checkpoint/train_state.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from jai.checkpoint import train_state, weights
from jai.checkpoint.train_state import MOMENTS, TrainState
from jai.training.plan import RunPlan
from jai.training.target_rows import target_rows
from jai_mlx import checkpoint, distributed
from jai_mlx.lora import adapter_tensors, apply_lora
from jai_mlx.model import GPT
from jai_mlx.optim import make_evaluate, make_optimizer, make_train_step, set_learning_rate

RNG_KIND = "mlx"
ADAM_NAMES = dict(zip(("m", "v"), MOMENTS, strict=True))  # MLX's names for the moments -> the file's

Batch = tuple[mx.array, ...]  # x, y, and under --mask-prompt the rows with a target


class Trainer:
    writer = checkpoint.WRITER

    def __init__(self, dev: mx.Device, device: str, dtype: str, description: str, compile: bool) -> None:
        # made by jai.training.loop.make_trainer; MLX's step is always one compiled graph (mx.compile)
        self.dev, self.device, self.dtype, self.description = dev, device, dtype, description

    def start(self, plan: RunPlan, resumed: TrainState | None) -> bool:
        cfg = plan.train_config
        self.model = build_model(plan, cfg.seed)
        distributed.share_weights(self.model)  # every process starts from rank 0's weights
        self.optimizer = make_optimizer(self.model, cfg)
        restored = True
        if resumed is not None:
            load_moments(self.optimizer, plan.moments, resumed.optimizer_step)
            restored = set_rng_state(resumed.rng, cfg.seed + resumed.step)
        else:
            mx.random.seed(cfg.seed)
        distributed.seed_rank()  # dropout: each process its own masks (rank 0 keeps the run's RNG)
        self.step_fn = make_train_step(self.model, self.optimizer, cfg, self.dtype)
        self.evaluate_fn = make_evaluate(self.model, self.dtype)
        self.sparse_targets = cfg.sparse_targets
        self.compiled_state = [self.model.state, self.optimizer.state, mx.random.state]
        return restored

    def batch(self, x: np.ndarray, y: np.ndarray) -> Batch:
        # the rows with a target are found here, on the host: the head computes no others. Padded to
        # whole windows (T rows): each count of rows is one more trace of the compiled step.
        arrays = (x, y, target_rows(y, multiple=y.shape[-1])) if self.sparse_targets else (x, y)
        return tuple(mx.array(a) for a in arrays)  # on the default device, which use_device set

    def step(self, batch: Batch, lr: float) -> tuple[mx.array, mx.array]:
        set_learning_rate(self.optimizer, lr)
        loss, norm = self.step_fn(*batch)
        mx.async_eval(loss, norm, self.compiled_state)
        return loss, norm

    def result(self, handle: tuple[mx.array, mx.array]) -> tuple[float, float]:
        loss, norm = handle
        return loss.item(), norm.item()

    def evaluate(self, batch: Batch) -> float:
        return self.evaluate_fn(*batch)

    def save(self, ckpt_dir: Path, state: TrainState, tokenizer: Path | None) -> None:
        """Model and training state into `ckpt_dir`, in one atomic directory replacement."""
        state.rng = rng_state()
        state.optimizer_step, moments = optimizer_moments(self.optimizer)
        adapter = adapter_tensors(self.model) if state.lora else None  # a LoRA run saves its adapter alone
        tensors = {} if adapter else checkpoint.to_contract(self.model, mx.float32)
        train_state.write_training_checkpoint(
            ckpt_dir,
            self.writer,
            lambda p: mx.save_safetensors(str(p), tensors, metadata=weights.METADATA),
            state,
            moments,
            tokenizer,
            adapter,
        )

    def max_abs_weight(self) -> float:
        largest = mx.max(mx.stack([mx.abs(p).max() for _, p in tree_flatten(self.model.parameters())]))
        return largest.item() if mx.all(mx.isfinite(largest)).item() else math.inf


def build_model(plan: RunPlan, seed: int) -> GPT:
    """A fresh model, or the weights of the checkpoint a run resumes or starts from, in float32."""
    model = GPT(plan.model_config, seed=seed)
    if plan.weights_from is not None:
        _, tensors = checkpoint.load_tensors(plan.weights_from)
        model.load_weights(list(checkpoint.from_contract(tensors).items()), strict=True)
    model.set_dtype(mx.float32)  # master weights; bfloat16 runs compute in copies (optim.py)
    if plan.lora is not None:  # the base frozen, the adapter alone trains
        apply_lora(model, plan.lora, plan.adapter)
    mx.eval(model.parameters())
    model.train()
    return model


def optimizer_moments(optimizer: optim.MultiOptimizer) -> tuple[int, dict[str, np.ndarray]]:
    """Adam's step count and moments, {exp_avg.<name>: float32 array in the model's layout}."""
    steps, moments = set(), {}
    for opt in optimizer.optimizers:  # one per parameter group
        for key, value in tree_flatten(opt.state):
            name, _, m = key.rpartition(".")
            if key == "step":
                steps.add(int(value.item()))
            elif m in ADAM_NAMES:
                moments[f"{ADAM_NAMES[m]}.{name}"] = np.array(value.astype(mx.float32))
    if len(steps) != 1:
        raise RuntimeError(f"optimizer step counts differ between parameters: {sorted(steps)}")
    return steps.pop(), moments


def load_moments(optimizer: optim.MultiOptimizer, moments: dict[str, np.ndarray], step: int) -> None:
    """The inverse of `optimizer_moments`: Adam continues as if it had never stopped.

    Must run before make_train_step, which captures the optimizer's state for mx.compile."""
    for opt in optimizer.optimizers:
        flat = []
        for key, value in tree_flatten(opt.state):
            name, _, m = key.rpartition(".")
            if key == "step":
                value = mx.array(step, dtype=value.dtype)
            elif m in ADAM_NAMES:
                value = mx.array(moments[f"{ADAM_NAMES[m]}.{name}"]).astype(value.dtype)
            flat.append((key, value))
        opt.state = tree_unflatten(flat)
    mx.eval(optimizer.state)


def rng_state() -> dict[str, Any]:
    """The dropout RNG, as JSON: MLX's global key (two uint32), the same on every device."""
    return {"kind": RNG_KIND, "key": [int(k) for k in mx.random.state[0].tolist()]}


def set_rng_state(state: dict[str, Any], seed: int) -> bool:
    """Restore an RNG state this twin wrote (True); anything else reseeds from `seed` (False)."""
    if state.get("kind") != RNG_KIND or "key" not in state:
        mx.random.seed(seed)
        return False
    hi, lo = state["key"]
    mx.random.seed((hi << 32) | lo)  # seeding with a 64-bit n sets the key to [n >> 32, n & 0xffffffff]
    return True
