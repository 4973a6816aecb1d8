"""The fused head + loss against the unfused one, alone: `python -m jai.benchmarks.head_ab`.

The head's matmul, the cross-entropy and their backward, for one batch's rows: unfused (logits [rows,
vocab], then the loss, as the twins did before jai_*/head_loss.py) and fused (head_loss.py), from the same
hidden states, in alternating rounds (benchmarks/rounds.py). A round is short, so many rounds fit where a
whole training step would need minutes; `--ignored` makes a share of the targets IGNORE, as under
--mask-prompt, and the fused side then computes only the rows with a target (jai/target_rows.py).

    python -m jai.benchmarks.head_ab --rows 2048 --rounds 12
    python -m jai.benchmarks.head_ab --rows 2048 --ignored 0.76      # --mask-prompt on `jai prepare`'s data
    python -m jai.benchmarks.head_ab --twin mlx --rows 1024
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from jai.benchmarks.rounds import alternate
from jai.dataset import IGNORE
from jai.training.target_rows import target_rows


def torch_runners(h: np.ndarray, w: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from jai_torch.head_loss import linear_cross_entropy
    from jai_torch.model import cross_entropy

    th, tw, ty = torch.from_numpy(h), torch.from_numpy(w), torch.from_numpy(y)
    rows = torch.from_numpy(target_rows(y[None]))
    masked = bool((y == IGNORE).any())

    def unfused() -> float:
        hh, ww = th.clone().requires_grad_(), tw.clone().requires_grad_()
        logits = F.linear(hh, ww)
        if masked:  # the twins' masked loss before the fused head: every row, then a mask
            loss = F.cross_entropy(logits, ty.clamp(min=0), reduction="none")
            loss = (loss * (ty >= 0)).sum() / (ty >= 0).sum()
        else:
            loss = cross_entropy(logits, ty)
        loss.backward()
        return loss.item()

    def fused() -> float:
        hh, ww = th.clone().requires_grad_(), tw.clone().requires_grad_()
        loss = linear_cross_entropy(hh, ww, ty, rows if masked else None)
        loss.backward()
        return loss.item()

    return {"fused": fused, "unfused": unfused}


def mlx_runners(h: np.ndarray, w: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    import jai_mlx  # noqa: F401 - the fast BLAS

    # isort: split
    import mlx.core as mx
    import mlx.nn as nn

    from jai_mlx.head_loss import linear_cross_entropy

    mh, mw, my = mx.array(h), mx.array(w), mx.array(y)
    rows = mx.array(target_rows(y[None], multiple=256))
    masked = bool((y == IGNORE).any())

    def unfused_loss(h: mx.array, w: mx.array) -> mx.array:
        valid = my >= 0
        losses = nn.losses.cross_entropy(h @ w.T, mx.where(valid, my, 0), reduction="none")
        return (losses * valid).sum() / mx.maximum(valid.sum(), 1)

    def fused_loss(h: mx.array, w: mx.array) -> mx.array:
        return linear_cross_entropy(h, w, my, rows if masked else None)

    def timed(f):
        grad = mx.compile(mx.value_and_grad(f, argnums=(0, 1)))

        def run() -> float:
            loss, grads = grad(mh, mw)
            mx.eval(loss, grads)
            return loss.item()

        return run

    return {"fused": timed(fused_loss), "unfused": timed(unfused_loss)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jai.benchmarks.head_ab",
        description="The fused head + cross-entropy against the unfused one, alone, in alternating rounds.",
        epilog=__doc__.split("\n\n", 2)[-1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--twin", choices=("torch", "mlx"), default="torch")
    p.add_argument("--rows", type=int, default=2048, help="batch x context (default: 2048, batch 8)")
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--vocab", type=int, default=24000)
    p.add_argument("--ignored", type=float, default=0.0, help="share of IGNORE targets (--mask-prompt)")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    h = rng.standard_normal((args.rows, args.width)).astype(np.float32)
    w = (rng.standard_normal((args.vocab, args.width)) * 0.02).astype(np.float32)
    y = rng.integers(0, args.vocab, args.rows)
    y[rng.random(args.rows) < args.ignored] = IGNORE
    make = torch_runners if args.twin == "torch" else mlx_runners
    out = alternate(
        make(h, w, y),
        args.rounds,
        args.warmup,
        1,
        args.rows,
        progress=lambda: print(".", end="", flush=True, file=sys.stderr),
    )
    print(file=sys.stderr)
    summary = {
        "twin": args.twin,
        "rows": args.rows,
        "vocab": args.vocab,
        "ignored": args.ignored,
        "fused/unfused": out["ratios"]["fused/unfused"],
        "rows_per_s": {k: v["tokens_per_s"]["median"] for k, v in out["runners"].items()},
        "losses": {k: v["losses"][-1] for k, v in out["runners"].items()},
        "loadavg": [r["loadavg"] for r in out["rounds"]],
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
