"""Peak memory of the PyTorch twin's training on the CPU: `python -m jai.benchmarks.peak_rss RUNNER`.

One runner per process, since a process's peak RSS (`ru_maxrss`) never goes down: the model at the default
shape (vocab 24,000), its training step, two steps at `--batch`, then the peak. RUNNER is `now` (the
twin as checked out), `nanogpt` (the nanoGPT-style model's plain step, benchmarks/torch_side.py) or a git
revision (the twin at that revision, as benchmarks/ab.py imports it).

    python -m jai.benchmarks.peak_rss now --batch 16
    python -m jai.benchmarks.peak_rss nanogpt --batch 16
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jai.benchmarks.peak_rss", description=__doc__.split("\n")[0])
    p.add_argument("runner", help="now, nanogpt, or a git revision of the twin")
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args(argv)

    import torch

    from jai.config import GPTConfig
    from jai.train_config import TrainConfig

    cfg, tc = GPTConfig(), TrainConfig(batch_size=args.batch, warmup_steps=0)
    xy = np.random.default_rng(0).integers(0, cfg.vocab_size, size=(1, args.batch, cfg.block_size + 1))
    x, y = torch.from_numpy(xy[..., :-1]), torch.from_numpy(xy[..., 1:])
    if args.runner in ("now", "nanogpt"):
        from jai_torch import model as model_mod
        from jai_torch import optim as optim_mod
    else:
        from jai.benchmarks.ab import past_twin

        model_mod, optim_mod, _ = past_twin(args.runner, "torch", Path(tempfile.mkdtemp()))
    model = model_mod.GPT(cfg, seed=0)
    if args.runner == "nanogpt":
        from jai.benchmarks.nanogpt_ref import from_twin
        from jai.benchmarks.torch_side import _peer_step

        model = from_twin(model)
        model.train()
        step = _peer_step("nanogpt", model, optim_mod.make_optimizer(model, tc), tc, "cpu")
    else:
        step = optim_mod.make_train_step(model, optim_mod.make_optimizer(model, tc), tc)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    for _ in range(2):
        loss = float(step(x, y)[0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "runner": args.runner,
                "batch": args.batch,
                "peak_rss_mb": peak,
                "before_mb": before,
                "loss": loss,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
