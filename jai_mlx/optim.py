"""AdamW, the compiled training step and evaluation in MLX. Twin: jai_torch/optim.py.

Both twins run the same update: Adam with bias correction, weight decay decoupled and applied only to
2-D weights (matmuls and embeddings, not biases or LayerNorm), global-norm gradient clipping, and the
mean of the micro-batch gradients when accumulating.

bfloat16 means the same in both twins: float32 master weights and float32 Adam moments, with the forward
and backward passes computed in bfloat16. PyTorch has autocast for that; MLX has none, so the step runs
the model on bfloat16 copies of the float32 weights (`computing_in`), and the gradients flow back through
the casts to the float32 masters, which the optimizer updates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import mlx.core as mx
import mlx.optimizers as optim
from mlx.utils import tree_map

from jai.train_config import TrainConfig
from jai.training.loop import eval_mode
from jai_mlx import distributed
from jai_mlx.model import GPT, loss_fn

StepFn = Callable[..., tuple[mx.array, mx.array]]
EvalFn = Callable[..., float]
DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16}


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


@contextmanager
def computing_in(model: GPT, dtype: mx.Dtype) -> Iterator[None]:
    """Run the model on `dtype` copies of its float32 weights (MLX's stand-in for autocast)."""
    if dtype == mx.float32:
        yield
        return
    masters = model.parameters()
    model.update(tree_map(lambda p: p.astype(dtype), masters))
    try:
        yield
    finally:
        model.update(masters)


def make_train_step(
    model: GPT,
    optimizer: optim.MultiOptimizer,
    cfg: TrainConfig,
    dtype: str | None = None,
    compile: bool = True,
) -> StepFn:
    """A function taking micro-batches x, y of shape [grad_accum, B, T], and under --mask-prompt their
    rows with a target [grad_accum, n] (jai/training/target_rows.py); returns (mean loss, grad norm).

    `dtype` ("float32" or "bfloat16") is the compute dtype, by default `cfg.dtype`. The step is always
    compiled (one trace per shape of the rows, which target_rows keeps few): `compile` is there for the
    twin's signature."""
    compute = DTYPES[dtype or cfg.dtype]

    def loss_of(params: dict, x: mx.array, y: mx.array, rows: mx.array | None) -> mx.array:
        model.update(params)  # as nn.value_and_grad does; the cast below is part of the graph
        with computing_in(model, compute):
            return loss_fn(model, x, y, rows)

    value_and_grad = mx.value_and_grad(loss_of)

    def loss_and_grad(model: GPT, x: mx.array, y: mx.array, rows: mx.array | None) -> tuple[mx.array, dict]:
        return value_and_grad(model.trainable_parameters(), x, y, rows)

    # The whole step, optimizer included, is one compiled graph; model and optimizer state (and the
    # random state, for dropout) are declared so the compiled function may read and update them.
    state = [model.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x: mx.array, y: mx.array, *rows: mx.array) -> tuple[mx.array, mx.array]:
        accum = x.shape[0]
        total, grads = loss_and_grad(model, x[0], y[0], rows[0][0] if rows else None)
        for i in range(1, accum):
            loss, g = loss_and_grad(model, x[i], y[i], rows[0][i] if rows else None)
            total, grads = total + loss, tree_map(mx.add, grads, g)
        if accum > 1:
            grads = tree_map(lambda g: g / accum, grads)
        grads = distributed.average(grads)  # several processes: the gradient of the whole global batch
        if cfg.grad_clip > 0:
            grads, norm = optim.clip_grad_norm(grads, cfg.grad_clip)
        else:
            _, norm = optim.clip_grad_norm(grads, float("inf"))
        optimizer.update(model, grads)
        return distributed.mean(total / accum), norm  # the loss of the whole global batch

    return step


def make_evaluate(model: GPT, dtype: str = "float32") -> EvalFn:
    """The loss of one batch [B, T] (and its rows with a target, under --mask-prompt): eval mode (no
    dropout), in the training dtype, no gradients."""

    def evaluate(x: mx.array, y: mx.array, *rows: mx.array) -> float:
        with eval_mode(model), computing_in(model, DTYPES[dtype]):  # no gradient asked for: none made
            return loss_fn(model, x, y, rows[0] if rows else None, gradient=False).item()

    return evaluate
