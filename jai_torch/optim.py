"""AdamW, the training step and evaluation in PyTorch. Twin: jai_mlx/optim.py.

Both twins run the same update: Adam with bias correction, weight decay decoupled and applied only to
2-D weights (matmuls and embeddings, not biases or LayerNorm), global-norm gradient clipping, and the
mean of the micro-batch gradients when accumulating.

bfloat16 means the same in both twins: float32 master weights and float32 Adam moments, with the forward
and backward passes computed in bfloat16 (here by autocast, `computing_in`). The step runs eagerly
unless `compile` asks for `torch.compile` of the model's forward pass (`jai train --compile`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

from jai.train_config import TrainConfig
from jai.training.loop import eval_mode
from jai_torch import distributed
from jai_torch.model import GPT, loss_fn

StepFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]
EvalFn = Callable[..., float]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def make_optimizer(model: GPT, cfg: TrainConfig) -> torch.optim.AdamW:
    trained = [p for p in model.parameters() if p.requires_grad]  # a LoRA run trains its adapter alone
    decay = [p for p in trained if p.ndim >= 2]
    no_decay = [p for p in trained if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused: one kernel per parameter group on CPU, CUDA and MPS alike. Without it PyTorch picks the
    # multi-tensor path on CUDA only, and on the CPU a Python loop over every tensor (~15% of a step here).
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=True)


def set_learning_rate(optimizer: torch.optim.AdamW, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def computing_in(model: GPT, dtype: torch.dtype) -> AbstractContextManager:
    """Run the model in `dtype` over its float32 weights: autocast, for bfloat16."""
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(model.wte.weight.device.type, dtype=dtype)


def make_train_step(
    model: GPT,
    optimizer: torch.optim.AdamW,
    cfg: TrainConfig,
    dtype: str | None = None,
    compile: bool = False,
) -> StepFn:
    """A function taking micro-batches x, y of shape [grad_accum, B, T], and under --mask-prompt their
    rows with a target [grad_accum, n] (jai/training/target_rows.py); returns (mean loss, grad norm).

    `dtype` ("float32" or "bfloat16") is the compute dtype, by default `cfg.dtype`."""
    compute = DTYPES[dtype or cfg.dtype]
    forward = torch.compile(model) if compile else model  # the same parameters, traced once per shape
    forward = distributed.wrap(forward)  # several processes: DistributedDataParallel averages the gradients
    params = [p for p in model.parameters() if p.requires_grad]

    def step(x: torch.Tensor, y: torch.Tensor, *rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        accum = x.shape[0]
        total = torch.zeros((), device=x.device)
        for i in range(accum):
            with distributed.syncing(forward, last=i == accum - 1):
                with computing_in(model, compute):
                    loss = loss_fn(forward, x[i], y[i], rows[0][i] if rows else None)
                (loss / accum).backward()
            total += loss.detach()
        if cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        else:
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return distributed.mean(total / accum), norm  # the loss of the whole global batch

    return step


def make_evaluate(model: GPT, dtype: str = "float32") -> EvalFn:
    """The loss of one batch [B, T] (and its rows with a target, under --mask-prompt): eval mode (no
    dropout), in the training dtype, no gradients."""

    def evaluate(x: torch.Tensor, y: torch.Tensor, *rows: torch.Tensor) -> float:
        with eval_mode(model), torch.no_grad(), computing_in(model, DTYPES[dtype]):
            return loss_fn(model, x, y, rows[0] if rows else None, gradient=False).item()

    return evaluate
