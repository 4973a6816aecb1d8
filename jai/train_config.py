"""Training hyperparameters and the learning-rate schedule, shared so both twins train identically."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 16
    grad_accum: int = 1  # micro-batches per optimizer step
    max_steps: int = 2000
    lr: float = 3e-4
    min_lr: float = 3e-5  # the cosine decays to this, nanoGPT-style lr / 10
    warmup_steps: int = 100
    weight_decay: float = 0.1  # decoupled, on 2-D weights only (matmuls and embeddings)
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 disables clipping
    eval_interval: int = 200
    eval_batches: int = 20
    ckpt_interval: int = 500
    seed: int = 1337
    dtype: str = "float32"  # or "bfloat16" where the device supports it
    mask_prompt: bool = False  # the loss on the answers alone: [ANSWER] ... [/ANSWER] targets
    # The share of the other targets (postings, questions) that count in the loss, a fixed draw per
    # position of train.bin: the head, most of a small model's step, computes only the rows that count.
    prompt_loss: float = 1.0
    align_samples: bool = False  # every training window starts at a sample's [BOS]

    def __post_init__(self) -> None:
        positive = ("batch_size", "grad_accum", "max_steps", "eval_interval", "eval_batches", "ckpt_interval")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"need 0 <= min_lr <= lr and lr > 0, got lr={self.lr}, min_lr={self.min_lr}")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("warmup_steps, weight_decay and grad_clip must not be negative")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"betas must be in [0, 1), got {self.beta1}, {self.beta2}")
        if not 0 < self.prompt_loss <= 1:
            raise ValueError(f"prompt_loss must be in (0, 1], got {self.prompt_loss} (--mask-prompt is 0)")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")

    @property
    def sparse_targets(self) -> bool:
        """Some targets are IGNORE: the twins hand the head only the rows that have one."""
        return self.mask_prompt or self.prompt_loss < 1

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to `lr`, then cosine decay to `min_lr` at `max_steps` (step counts from 0)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
    if step >= cfg.max_steps:
        return cfg.min_lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)
