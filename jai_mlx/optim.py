"""AdamW and the compiled training step in MLX. Twin: jai_torch/optim.py.

Both twins run the same update: Adam with bias correction, weight decay decoupled and applied only to
2-D weights (matmuls and embeddings, not biases or LayerNorm), global-norm gradient clipping, and the
mean of the micro-batch gradients when accumulating.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_map

from jai.train_config import TrainConfig
from jai_mlx.model import GPT, loss_fn

StepFn = Callable[[mx.array, mx.array], tuple[mx.array, mx.array]]


def make_optimizer(model: GPT, cfg: TrainConfig) -> optim.MultiOptimizer:
    # MLX's Adam skips bias correction unless asked, and has no parameter groups: two optimizers
    # split by a predicate play the role of torch's two groups.
    def adamw(weight_decay: float) -> optim.AdamW:
        betas = [cfg.beta1, cfg.beta2]
        return optim.AdamW(cfg.lr, betas, cfg.eps, weight_decay=weight_decay, bias_correction=True)

    optimizer = optim.MultiOptimizer([adamw(cfg.weight_decay), adamw(0.0)], [lambda _, p: p.ndim >= 2])
    optimizer.init(model.trainable_parameters())
    return optimizer


def set_learning_rate(optimizer: optim.MultiOptimizer, lr: float) -> None:
    optimizer.learning_rate = lr


def make_train_step(model: GPT, optimizer: optim.MultiOptimizer, cfg: TrainConfig) -> StepFn:
    """A function taking micro-batches x, y of shape [grad_accum, B, T]; returns (mean loss, grad norm)."""
    loss_and_grad = nn.value_and_grad(model, loss_fn)
    # The whole step, optimizer included, is one compiled graph; model and optimizer state (and the
    # random state, for dropout) are declared so the compiled function may read and update them.
    state = [model.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x: mx.array, y: mx.array) -> tuple[mx.array, mx.array]:
        accum = x.shape[0]
        total, grads = loss_and_grad(model, x[0], y[0])
        for i in range(1, accum):
            loss, g = loss_and_grad(model, x[i], y[i])
            total, grads = total + loss, tree_map(mx.add, grads, g)
        if accum > 1:
            grads = tree_map(lambda g: g / accum, grads)
        if cfg.grad_clip > 0:
            grads, norm = optim.clip_grad_norm(grads, cfg.grad_clip)
        else:
            _, norm = optim.clip_grad_norm(grads, float("inf"))
        optimizer.update(model, grads)
        return total / accum, norm

    return step
