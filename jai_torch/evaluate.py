"""Per-token losses for `jai eval` (jai/evaluation/scoring.py), in PyTorch. Twin: jai_mlx/evaluate.py."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from jai_torch.model import GPT


def token_losses(model: GPT, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cross-entropy in nats (float32) of each target y[b, t] after x[b, :t+1]: [B, T] from [B, T] ids.

    Evaluation mode, no gradients; the logits are cast to float32 before the softmax, as in training.
    """
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)).to(device)).float()
        targets = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)).to(device)
        losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        return losses.reshape(y.shape).cpu().numpy()
