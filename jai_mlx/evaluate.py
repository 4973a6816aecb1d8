"""Per-token losses for `jai eval` (jai/evaluation/scoring.py), in MLX. Twin: jai_torch/evaluate.py."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from jai_mlx.model import GPT


def token_losses(model: GPT, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cross-entropy in nats (float32) of each target y[b, t] after x[b, :t+1]: [B, T] from [B, T] ids.

    Evaluation mode, no gradients; the logits are cast to float32 before the softmax, as in training.
    """
    model.eval()
    logits = model(mx.array(np.ascontiguousarray(x, dtype=np.int32))).astype(mx.float32)
    targets = mx.array(np.ascontiguousarray(y, dtype=np.int32))
    losses = nn.losses.cross_entropy(logits, targets, reduction="none")
    return np.array(losses, dtype=np.float32)
