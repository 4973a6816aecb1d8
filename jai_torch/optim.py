"""AdamW and the compiled training step in PyTorch. Twin: jai_mlx/optim.py.

Both twins run the same update: Adam with bias correction, weight decay decoupled and applied only to
2-D weights (matmuls and embeddings, not biases or LayerNorm), global-norm gradient clipping, and the
mean of the micro-batch gradients when accumulating.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import torch

from jai.train_config import TrainConfig
from jai_torch.model import GPT, loss_fn

StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def make_optimizer(model: GPT, cfg: TrainConfig) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused: one kernel per parameter group on CPU, CUDA and MPS alike. Without it PyTorch picks the
    # multi-tensor path on CUDA only, and on the CPU a Python loop over every tensor (~15% of a step here).
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=True)


def set_learning_rate(optimizer: torch.optim.AdamW, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def make_train_step(model: GPT, optimizer: torch.optim.AdamW, cfg: TrainConfig) -> StepFn:
    """A function taking micro-batches x, y of shape [grad_accum, B, T]; returns (mean loss, grad norm)."""
    device_type = model.wte.weight.device.type
    autocast = torch.autocast(device_type, dtype=torch.bfloat16) if cfg.dtype == "bfloat16" else nullcontext()
    params = list(model.parameters())

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        accum = x.shape[0]
        total = torch.zeros((), device=x.device)
        for i in range(accum):
            with autocast:
                loss = loss_fn(model, x[i], y[i])
            (loss / accum).backward()
            total += loss.detach()
        if cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        else:
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return total / accum, norm

    return step
