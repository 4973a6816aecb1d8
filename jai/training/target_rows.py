"""Which rows of a batch the loss's head must compute: those with a target, for `--mask-prompt`.

Under `--mask-prompt` most targets are IGNORE (prompt tokens), and the head (the largest matmul of a
small model) need not see their rows at all. The twins take these row indices with each batch, made on
the host from the targets before they reach the device, so no device waits for a count.
"""

from __future__ import annotations

import numpy as np

from jai.dataset import IGNORE


def target_rows(y: np.ndarray, multiple: int = 1) -> np.ndarray:
    """Flat row indices [..., n] of each micro-batch y [..., B, T]: first every row with a target, in
    order, then IGNORE rows to make n a multiple of `multiple` (at most B * T).

    `multiple` keeps the number of distinct shapes small where each shape costs a compilation (MLX);
    the padding rows are real rows whose target is IGNORE, so they change nothing but the work."""
    flat = y.reshape(*y.shape[:-2], -1)
    width = flat.shape[-1]
    # a stable sort on "is IGNORE" puts the rows with a target first, each group in its own order
    order = np.argsort(flat == IGNORE, axis=-1, kind="stable")
    most = int((flat != IGNORE).sum(axis=-1).max(initial=0))
    n = min(-(-max(most, 1) // multiple) * multiple, width)
    return order[..., :n].astype(np.int64)
