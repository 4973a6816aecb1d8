"""The tied head and the cross-entropy, fused over chunks of rows. Twin: jai_mlx/head_loss.py.

The head's logits are the largest tensor of a step: [rows, vocab], 393 MB in float32 at 4,096 rows and a
24,000-token vocabulary, and the loss's backward made a second one for their gradient. Here the head's
matmul, the log-softmax and the gradient run `CHUNK` rows at a time, in the forward pass (the technique
of Liger-Kernel's fused linear cross-entropy and Apple's Cut Cross-Entropy): each chunk's logits become
its gradient in place, then the gradients of the hidden states and of the head's weight, so neither the
logits nor their gradient ever exists whole, and backward only scales the two saved gradients.

Rows whose target is IGNORE (-1) cost nothing when the caller leaves them out (`rows`, from
jai/training/target_rows.py): under `--mask-prompt` most rows are prompt tokens, and the head never sees them.
"""

from __future__ import annotations

import torch

# Rows per chunk: 1,024 x 24,000 float32 logits are 98 MB (and their log-probabilities as much), a
# quarter of a batch-16 step's. Measured on a loaded 2-core CPU (benchmarks/head_ab.py, alternating
# rounds): in a first form (logsumexp per chunk) 256 rows ran at 0.64x the unfused head's speed and 2,048
# at 0.87x; in this one 1,024 rows measured about even (docs/benchmarks.md, 2026-12-04).
CHUNK = 1024


def _compute_dtype(h: torch.Tensor) -> torch.dtype:
    """The dtype the head's matmuls run in: autocast's (a bfloat16 run), else the hidden states'."""
    device = h.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else h.dtype


def _chunk_loss(h: torch.Tensor, w: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 log-probabilities of one chunk's rows, and the summed loss of those with a target.

    log_softmax is one fused kernel; logsumexp and a subtraction were three passes and a temporary."""
    logp = torch.log_softmax((h @ w.T).float(), dim=-1)
    picked = logp.gather(1, targets.clamp(min=0)[:, None]).squeeze(1)
    return logp, -(picked * (targets >= 0)).sum()


class _LinearCrossEntropy(torch.autograd.Function):
    """Sum of the rows' losses / `count`, and (computed here, saved for backward) its gradients."""

    @staticmethod
    def forward(
        ctx,
        h: torch.Tensor,
        w: torch.Tensor,
        targets: torch.Tensor,
        count: torch.Tensor,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        hc, wc = h.to(dtype), w.to(dtype)
        grad_h = torch.empty_like(h)
        want_w = ctx.needs_input_grad[1]  # False for a LoRA run's frozen head
        grad_w = torch.zeros(w.shape, dtype=torch.float32, device=w.device) if want_w else None
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        for start in range(0, h.shape[0], CHUNK):
            part = slice(start, start + CHUNK)
            t = targets[part]
            logp, loss = _chunk_loss(hc[part], wc, t)
            total += loss
            g = logp.exp_()  # softmax, in the log-probabilities' buffer
            g[torch.arange(t.shape[0], device=g.device), t.clamp(min=0)] -= 1.0
            g = g.mul_(((t >= 0) / count)[:, None]).to(dtype)  # IGNORE rows: no gradient
            if g.dtype == h.dtype:
                torch.mm(g, wc, out=grad_h[part])
            else:  # bfloat16 products into float32 hidden states' gradients
                grad_h[part] = g @ wc
            if want_w:  # not addmm_: FlopCounterMode does not count it (tests/test_bench_flops.py)
                grad_w.add_(g.T @ hc[part])
        ctx.save_for_backward(grad_h, grad_w.to(w.dtype) if want_w else None)
        return total / count

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * grad, None if grad_w is None else grad_w * grad, None, None, None


def _loss_alone(h: torch.Tensor, w: torch.Tensor, targets: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """The loss without its gradients (evaluation): the chunks' losses alone."""
    chunks = range(0, h.shape[0], CHUNK)
    return sum(_chunk_loss(h[s : s + CHUNK], w, targets[s : s + CHUNK])[1] for s in chunks) / count


def linear_cross_entropy(
    h: torch.Tensor,
    w: torch.Tensor,
    targets: torch.Tensor,
    rows: torch.Tensor | None = None,
    gradient: bool = True,
) -> torch.Tensor:
    """Mean cross-entropy of the logits h @ w.T over the rows whose target is not IGNORE (-1); 0 if none.

    h [..., C] hidden states, w [vocab, C] the head, targets [...]; `rows` (optional) are the flat row
    indices to compute, which must hold every row with a target (jai/training/target_rows.py).
    `gradient=False` (evaluation) computes the loss alone: the fused path makes its gradients in the
    forward pass."""
    h, targets = h.reshape(-1, h.shape[-1]), targets.reshape(-1).long()
    count = (targets >= 0).sum().clamp(min=1)  # a tensor: no wait for the device
    if rows is not None:
        h, targets = h[rows], targets[rows]
    dtype = _compute_dtype(h)
    with torch.autocast(h.device.type, enabled=False):  # the dtypes are chosen here, explicitly
        if gradient and torch.is_grad_enabled() and (h.requires_grad or w.requires_grad):
            return _LinearCrossEntropy.apply(h, w, targets, count, dtype)
        return _loss_alone(h.to(dtype), w.to(dtype), targets, count)
