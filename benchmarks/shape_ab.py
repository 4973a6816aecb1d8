"""Training steps of several model shapes, in alternating rounds: `python -m jai.benchmarks.shape_ab`.

What a shape costs decides how many tokens it reads in a fixed number of CPU minutes, which decides its
answers there (docs/quality.md: `jai run`'s shape was chosen from these speeds and the answers they buy).
Each runner is the PyTorch twin's real training step (AdamW included) on one fixed batch; the first
shape is the reference of every ratio. `@S` after a shape keeps only a share S of the targets, as
`--prompt-loss` does, so the head skips the other rows.

    python -m jai.benchmarks.shape_ab                                     # tiny, small and seed shapes
    python -m jai.benchmarks.shape_ab --shapes 4x4x256,3x3x192,3x3x192@0.55 --rounds 6
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

import numpy as np

from jai.benchmarks.rounds import alternate
from jai.benchmarks.stats import summarize
from jai.config import GPTConfig
from jai.dataset import IGNORE
from jai.train_config import TrainConfig
from jai.training.target_rows import target_rows

DEFAULT_SHAPES = "4x4x256,3x3x192,6x6x384"


def parse_shape(text: str) -> tuple[GPTConfig, float]:
    """'LxHxD' or 'LxHxD@share' -> (the model's config without its vocabulary, the share of targets)."""
    dims, _, share = text.partition("@")
    try:
        n_layer, n_head, n_embd = (int(v) for v in dims.split("x"))
        kept = float(share) if share else 1.0
    except ValueError:
        raise SystemExit(f"shape_ab: {text!r} is not LAYERSxHEADSxWIDTH[@SHARE], e.g. 3x3x192@0.5") from None
    if not 0 < kept <= 1:
        raise SystemExit(f"shape_ab: the share in {text!r} must be in (0, 1]")
    return GPTConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd), kept


def torch_step(cfg: GPTConfig, kept: float, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    import torch

    from jai_torch.model import GPT
    from jai_torch.optim import make_optimizer, make_train_step

    y = y.copy()
    if kept < 1:
        y[np.random.default_rng(seed).random(y.shape) >= kept] = IGNORE
    model, train_cfg = GPT(cfg, seed=seed), TrainConfig(batch_size=x.shape[1])
    step = make_train_step(model, make_optimizer(model, train_cfg), train_cfg)
    args = (torch.from_numpy(x), torch.from_numpy(y))
    if kept < 1:  # what the loop hands a step when targets are sparse: the rows the head computes
        args += (torch.from_numpy(target_rows(y)),)
    return lambda: float(step(*args)[0])  # (loss, grad norm)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jai.benchmarks.shape_ab",
        description="Training steps of several model shapes (PyTorch twin) in alternating rounds.",
        epilog=__doc__.split("\n\n", 2)[-1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--shapes", default=DEFAULT_SHAPES, help="LxHxD[@SHARE],... (default: %(default)s)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--vocab", type=int, default=24000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=2, help="timed steps per runner and round")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    x, y = (rng.integers(0, args.vocab, (1, args.batch, args.context)) for _ in range(2))
    runners = {}
    for text in args.shapes.split(","):
        cfg, kept = parse_shape(text)
        cfg = dataclasses.replace(cfg, vocab_size=args.vocab, block_size=args.context)
        runners[text] = torch_step(cfg, kept, x, y, args.seed)
    out = alternate(
        runners,
        args.rounds,
        args.warmup,
        args.steps,
        args.batch * args.context,
        progress=lambda: print(".", end="", flush=True, file=sys.stderr),
    )
    print(file=sys.stderr)
    first, rounds = next(iter(runners)), out["rounds"]
    speed = {  # each shape's tokens/s over the first's, round by round: the load hits both alike
        name: summarize([r["tokens_per_s"][name] / r["tokens_per_s"][first] for r in rounds])
        for name in runners
    }
    tokens_per_s = {name: v["tokens_per_s"]["median"] for name, v in out["runners"].items()}
    loads = [r["loadavg"] for r in rounds]
    print(json.dumps({"speed_vs_first": speed, "tokens_per_s": tokens_per_s, "loadavg": loads}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
