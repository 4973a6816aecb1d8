"""bfloat16 against float32 for one twin's training: `python -m jai.benchmarks.dtype_ab DATA`.

Two copies of one model, from the same weights, train on the same sequence of real batches from DATA (a
`jai prepare` folder): one in float32, one with `--dtype bfloat16` (bf16 compute over float32 masters).
Each round is one step of each, in alternating order (benchmarks/rounds.py), so each round's speed ratio
compares the two under the same load, and the rounds themselves are the two loss curves. At the end both
are evaluated on the same validation batches. This is how docs/benchmarks.md decides the CPU's default dtype.

    python -m jai.benchmarks.dtype_ab out/data --batch 8 --rounds 40
    python -m jai.benchmarks.dtype_ab out/data --twin mlx --rounds 10
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from jai.benchmarks.plan import SIZES
from jai.benchmarks.rounds import alternate
from jai.config import GPTConfig
from jai.dataset import BatchSampler, TokenBin
from jai.train_config import TrainConfig

DTYPES = ("bfloat16", "float32")  # the first is the one the ratio is about


def sampler(data: Path, split: str, batch: int, block: int, seed: int) -> BatchSampler:
    return BatchSampler(TokenBin(data / f"{split}.bin").data, batch, block, seed)


def runners(twin: str, data: Path, cfg: GPTConfig, batch: int, seed: int) -> tuple[dict, dict]:
    """{dtype: one training step on that dtype's next batch}, {dtype: validation loss of its model}."""
    if twin == "mlx":
        import jai_mlx  # noqa: F401 - the fast BLAS
    model_mod = importlib.import_module(f"jai_{twin}.model")
    optim = importlib.import_module(f"jai_{twin}.optim")
    tc = TrainConfig(batch_size=batch, warmup_steps=0)
    val = list(sampler(data, "val", batch, cfg.block_size, seed).eval_batches(4))
    steps, evals = {}, {}
    for dtype in DTYPES:
        model = model_mod.GPT(cfg, seed=seed)  # the same draw: the same weights
        step = optim.make_train_step(model, optim.make_optimizer(model, tc), tc, dtype)
        evaluate = optim.make_evaluate(model, dtype)
        draw = sampler(data, "train", batch, cfg.block_size, seed)
        to = _converter(twin)
        steps[dtype] = lambda step=step, draw=draw, to=to: _run(twin, step, *map(to, draw.next_batch()))
        evals[dtype] = lambda evaluate=evaluate, to=to: statistics.mean(
            evaluate(to(x), to(y)) for x, y in val
        )
    return steps, evals


def _converter(twin: str):
    if twin == "torch":
        import torch

        return lambda a: torch.from_numpy(a.astype(np.int64))
    import mlx.core as mx

    return lambda a: mx.array(a)


def _run(twin: str, step, x, y) -> float:
    """One step on one micro-batch, waited for."""
    loss, norm = step(x[None], y[None])
    if twin == "mlx":
        import mlx.core as mx

        mx.eval(loss, norm)
    return float(loss.item())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jai.benchmarks.dtype_ab",
        description="bfloat16 against float32 training of one twin: speed in alternating rounds, and "
        "both loss curves on the same real batches.",
        epilog=__doc__.split("\n\n", 2)[-1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", type=Path, help="a `jai prepare` folder")
    p.add_argument("--twin", choices=("torch", "mlx"), default="torch")
    p.add_argument("--config", choices=sorted(SIZES), default="default")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=40, help="steps of each, alternating (default: 40)")
    p.add_argument("--seed", type=int, default=1337)
    args = p.parse_args(argv)
    vocab = json.loads((args.data / "meta.json").read_text())["vocab_size"]
    base = SIZES[args.config][0]
    cfg = dataclasses.replace(base, vocab_size=vocab)
    steps, evals = runners(args.twin, args.data, cfg, args.batch, args.seed)
    out = alternate(
        steps,
        args.rounds,
        0,  # no warmup: every step is a point of the loss curves
        1,
        args.batch * cfg.block_size,
        progress=lambda: print(".", end="", flush=True, file=sys.stderr),
    )
    print(file=sys.stderr)
    curves = {n: out["runners"][n]["losses"] for n in DTYPES}
    tail = max(1, args.rounds // 4)
    summary: dict[str, Any] = {
        "twin": args.twin,
        "batch": args.batch,
        "vocab": vocab,
        "bfloat16/float32": out["ratios"]["bfloat16/float32"],
        "tokens_per_s": {n: out["runners"][n]["tokens_per_s"]["median"] for n in DTYPES},
        f"mean_loss_last_{tail}_steps": {n: statistics.mean(c[-tail:]) for n, c in curves.items()},
        "val_loss": {n: evals[n]() for n in DTYPES},
        "losses": curves,
        "loadavg": [r["loadavg"] for r in out["rounds"]],
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
