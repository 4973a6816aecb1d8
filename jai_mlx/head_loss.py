"""The tied head and the cross-entropy, fused over chunks of rows. Twin: jai_torch/head_loss.py.

The head's logits are the largest tensor of a step: [rows, vocab], 393 MB in float32 at 4,096 rows and a
24,000-token vocabulary, and the loss's backward made a second one for their gradient. Here the head's
matmul, the log-softmax and the gradient run `CHUNK` rows at a time, in the forward pass (the technique
of Liger-Kernel's fused linear cross-entropy and Apple's Cut Cross-Entropy): each chunk's logits become
its gradient, then the gradients of the hidden states and of the head's weight, so neither the logits
nor their gradient ever exists whole, and the vjp only scales the two gradients the forward pass made.

Rows whose target is IGNORE (-1) cost nothing when the caller leaves them out (`rows`, from
jai/training/target_rows.py): under `--mask-prompt` most rows are prompt tokens, and the head never sees them.
"""

from __future__ import annotations

import mlx.core as mx

# Rows per chunk: 256 x 24,000 float32 logits are 25 MB, and the chunk's matmuls are still large enough
# to run at the GEMM rate.
CHUNK = 256


def _chunk_loss(h: mx.array, w: mx.array, targets: mx.array) -> tuple[mx.array, ...]:
    """Float32 logits of one chunk, their logsumexp, and the summed loss of its rows with a target."""
    logits = (h @ w.T).astype(mx.float32)
    lse = mx.logsumexp(logits, axis=-1)
    picked = mx.take_along_axis(logits, mx.maximum(targets, 0)[:, None], axis=1).squeeze(1)
    return logits, lse, ((lse - picked) * (targets >= 0)).sum()


@mx.custom_function
def _linear_cross_entropy(
    h: mx.array, w: mx.array, targets: mx.array, count: mx.array
) -> tuple[mx.array, mx.array, mx.array]:
    """Sum of the rows' losses / `count`, and its gradients (which the vjp below scales)."""
    grad_h, grad_w, total = [], mx.zeros(w.shape, dtype=mx.float32), mx.array(0.0)
    vocab = mx.arange(w.shape[0])
    for start in range(0, h.shape[0], CHUNK):
        part = slice(start, start + CHUNK)
        t = targets[part]
        logits, lse, loss = _chunk_loss(h[part], w, t)
        total = total + loss
        # softmax - one_hot, IGNORE rows zeroed: one fused elementwise kernel in the compiled step
        g = (mx.exp(logits - lse[:, None]) - (vocab == t[:, None])) * ((t >= 0) / count)[:, None]
        g = g.astype(w.dtype)
        grad_h.append(g @ w)
        grad_w = grad_w + (g.T @ h[part]).astype(mx.float32)
    return total / count, mx.concatenate(grad_h), grad_w.astype(w.dtype)


@_linear_cross_entropy.vjp
def _linear_cross_entropy_vjp(
    primals: tuple[mx.array, ...], cotangents: tuple[mx.array, ...], outputs: tuple[mx.array, ...]
) -> tuple[mx.array, ...]:
    _, grad_h, grad_w = outputs
    _, _, targets, count = primals
    c = cotangents[0]  # float32: each gradient keeps its primal's dtype (bfloat16 copies, in a bf16 run)
    scaled = (grad_h * c).astype(grad_h.dtype), (grad_w * c).astype(grad_w.dtype)
    return *scaled, mx.zeros_like(targets), mx.zeros_like(count)


def _loss_alone(h: mx.array, w: mx.array, targets: mx.array, count: mx.array) -> mx.array:
    """The loss without its gradients (evaluation): the chunks' losses alone."""
    chunks = range(0, h.shape[0], CHUNK)
    return sum(_chunk_loss(h[s : s + CHUNK], w, targets[s : s + CHUNK])[2] for s in chunks) / count


def linear_cross_entropy(
    h: mx.array, w: mx.array, targets: mx.array, rows: mx.array | None = None, gradient: bool = True
) -> mx.array:
    """Mean cross-entropy of the logits h @ w.T over the rows whose target is not IGNORE (-1); 0 if none.

    h [..., C] hidden states, w [vocab, C] the head, targets [...]; `rows` (optional) are the flat row
    indices to compute, which must hold every row with a target (jai/training/target_rows.py).
    `gradient=False` (evaluation) computes the loss alone: the fused path makes its gradients in the
    forward pass."""
    h, targets = h.reshape(-1, h.shape[-1]), targets.reshape(-1)
    count = mx.maximum((targets >= 0).sum(), 1).astype(mx.float32)
    if rows is not None:
        h, targets = h[rows], targets[rows]
    if gradient:  # MLX cannot tell whether a gradient is asked for: the caller says
        return _linear_cross_entropy(h, w, targets, count)[0]
    return _loss_alone(h, w, targets, count)
