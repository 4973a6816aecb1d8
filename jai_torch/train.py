"""What training needs from PyTorch. Twin: jai_mlx/train.py; `diff` the two to see only framework differences.

The loop itself is jai/training/loop.py, written once; this file is its `Trainer` for PyTorch: the model and
optimizer on a device, one optimizer step, evaluation, Adam's moments and the RNG in and out of the
shared training-state format (jai/checkpoint/train_state.py).
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from jai.checkpoint import train_state, weights
from jai.checkpoint.train_state import MOMENTS, TrainState
from jai.training.plan import RunPlan
from jai.training.target_rows import target_rows
from jai_torch import checkpoint, distributed
from jai_torch.lora import adapter_tensors, apply_lora
from jai_torch.model import GPT
from jai_torch.optim import make_evaluate, make_optimizer, make_train_step, set_learning_rate

RNG_KIND = "torch"

Batch = tuple[torch.Tensor, ...]  # x, y, and under --mask-prompt the rows with a target


class Trainer:
    writer = checkpoint.WRITER

    def __init__(self, dev: torch.device, device: str, dtype: str, description: str, compile: bool) -> None:
        # made by jai.training.loop.make_trainer; compile: torch.compile the forward pass (--compile)
        self.dev, self.device, self.dtype, self.description = dev, device, dtype, description
        self.compile = compile

    def start(self, plan: RunPlan, resumed: TrainState | None) -> bool:
        cfg = plan.train_config
        self.model = build_model(plan, cfg.seed, self.dev)
        distributed.share_weights(self.model)  # every process starts from rank 0's weights
        self.optimizer = make_optimizer(self.model, cfg)
        restored = True
        if resumed is not None:
            load_moments(self.model, self.optimizer, plan.moments, resumed.optimizer_step)
            restored = set_rng_state(resumed.rng, cfg.seed + resumed.step, self.dev)
        else:
            torch.manual_seed(cfg.seed)
        distributed.seed_rank()  # dropout: each process its own masks (rank 0 keeps the run's RNG)
        self.step_fn = make_train_step(self.model, self.optimizer, cfg, self.dtype, self.compile)
        self.evaluate_fn = make_evaluate(self.model, self.dtype)
        self.sparse_targets = cfg.sparse_targets
        return restored

    def batch(self, x: np.ndarray, y: np.ndarray) -> Batch:
        # the rows with a target are found here, on the host: the head computes no others
        arrays = (x, y, target_rows(y)) if self.sparse_targets else (x, y)
        return tuple(torch.from_numpy(a).to(self.dev, non_blocking=True) for a in arrays)

    def step(self, batch: Batch, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        set_learning_rate(self.optimizer, lr)
        return self.step_fn(*batch)  # queued on the device; `result` waits for it

    def result(self, handle: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, float]:
        loss, norm = torch.stack(handle).tolist()
        return loss, norm

    def evaluate(self, batch: Batch) -> float:
        return self.evaluate_fn(*batch)

    def save(self, ckpt_dir: Path, state: TrainState, tokenizer: Path | None) -> None:
        """Model and training state into `ckpt_dir`, in one atomic directory replacement."""
        state.rng = rng_state(self.dev)
        state.optimizer_step, moments = optimizer_moments(self.model, self.optimizer)
        adapter = adapter_tensors(self.model) if state.lora else None  # a LoRA run saves its adapter alone
        tensors = {} if adapter else checkpoint.to_contract(self.model, torch.float32)
        train_state.write_training_checkpoint(
            ckpt_dir,
            self.writer,
            lambda p: save_file(tensors, p, metadata=weights.METADATA),
            state,
            moments,
            tokenizer,
            adapter,
        )

    def max_abs_weight(self) -> float:
        largest = torch.stack([p.detach().abs().max() for p in self.model.parameters()]).max()
        return largest.item() if torch.isfinite(largest).item() else math.inf


def build_model(plan: RunPlan, seed: int, dev: torch.device) -> GPT:
    """A fresh model, or the weights of the checkpoint a run resumes or starts from, in float32."""
    model = GPT(plan.model_config, seed=seed)
    if plan.weights_from is not None:
        _, tensors = checkpoint.load_tensors(plan.weights_from)
        model.load_state_dict(checkpoint.from_contract(tensors), strict=True)
    model.to(device=dev, dtype=torch.float32)  # master weights; bfloat16 runs compute under autocast
    if plan.lora is not None:  # the base frozen, the adapter alone trains
        apply_lora(model, plan.lora, plan.adapter)
    model.train()
    return model


def optimizer_moments(model: GPT, optimizer: torch.optim.AdamW) -> tuple[int, dict[str, np.ndarray]]:
    """Adam's step count and moments, {exp_avg.<name>: float32 array in the model's layout}."""
    steps, moments = set(), {}
    for name, p in model.named_parameters():
        if not p.requires_grad:  # frozen (a LoRA run's base): no moments
            continue
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
        if p.requires_grad
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
