"""A/B of a twin against its own past: `python -m jai.benchmarks.ab --rev REV`.

The twin's model, step and generation (jai_<twin>/model.py, optim.py, generate.py) as they were at git
revision REV are imported beside today's, under another package name, in one process. Both start from the
same weights and train on the same batch (or decode the same prompts, greedily), timed in alternating
rounds (benchmarks/rounds.py); the ratio today / REV is taken within each round, so a loaded machine moves
both alike. This is how docs/benchmarks.md states the speed before and after a refactor.

    python -m jai.benchmarks.ab --rev e5eb0a4                       # PyTorch twin's training step
    python -m jai.benchmarks.ab --rev e5eb0a4 --twin mlx --batch 4  # the MLX twin, a lighter batch
    python -m jai.benchmarks.ab --rev e5eb0a4 --decode --batch 1    # KV-cached greedy decoding
    python -m jai.benchmarks.ab --rev e5eb0a4 --mask-prompt out/data  # loss on answers alone, real batches
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from jai.benchmarks import flops
from jai.benchmarks.plan import SIZES
from jai.benchmarks.rounds import alternate
from jai.config import GPTConfig
from jai.train_config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def past_twin(rev: str, twin: str, where: Path) -> tuple[Any, ...]:
    """(model, optim, generate) modules of jai_<twin> at `rev`, importable as `ab_past_<twin>`."""
    package = where / f"ab_past_{twin}"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    for name in ("model", "optim", "generate"):
        text = subprocess.run(
            ["git", "show", f"{rev}:jai_{twin}/{name}.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (package / f"{name}.py").write_text(text.replace(f"jai_{twin}.model", f"ab_past_{twin}.model"))
    sys.path.insert(0, str(where))
    return tuple(importlib.import_module(f"ab_past_{twin}.{name}") for name in ("model", "optim", "generate"))


def one_batch(cfg: GPTConfig, batch: int, seed: int, masked: Path | None) -> tuple[Any, Any, GPTConfig]:
    """x, y [1, batch, T]: random tokens; or, with `masked` (a `jai prepare` folder), a real batch whose
    targets outside the answers are IGNORE (`--mask-prompt`), and the config at the data's vocabulary."""
    import dataclasses

    import numpy as np

    if masked is None:
        xy = np.random.default_rng(seed).integers(0, cfg.vocab_size, size=(1, batch, cfg.block_size + 1))
        return xy[..., :-1], xy[..., 1:], cfg
    from jai.dataset import BatchSampler, TokenBin, answer_mask
    from jai.training.plan import marker_ids

    tokens = TokenBin(masked / "train.bin").data
    vocab = json.loads((masked / "meta.json").read_text())["vocab_size"]
    mask = answer_mask(tokens, *marker_ids(masked))
    x, y = BatchSampler(tokens, batch, cfg.block_size, seed, loss_mask=mask).next_batch()
    return x[None].astype(np.int64), y[None].astype(np.int64), dataclasses.replace(cfg, vocab_size=vocab)


def torch_steps(
    past: tuple[Any, Any], cfg: GPTConfig, batch: int, seed: int, masked: Path | None = None
) -> tuple[dict, Any]:
    import torch

    from jai.benchmarks.torch_side import time_gemms
    from jai.training.target_rows import target_rows
    from jai_torch import model as now_model
    from jai_torch import optim as now_optim

    torch.set_num_threads(torch.get_num_threads())
    x, y, cfg = one_batch(cfg, batch, seed, masked)
    rows = (torch.from_numpy(target_rows(y)),) if masked else ()  # as jai_torch.train.Trainer.batch
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    tc = TrainConfig(batch_size=batch, warmup_steps=0, mask_prompt=masked is not None)
    now = now_model.GPT(cfg, seed=seed)
    then = past[0].GPT(cfg, seed=seed)
    then.load_state_dict(now.state_dict())
    step_now = now_optim.make_train_step(now, now_optim.make_optimizer(now, tc), tc)
    step_then = past[1].make_train_step(then, past[1].make_optimizer(then, tc), tc)
    gemms = flops.train_gemms(cfg, batch * cfg.block_size)
    steps = {
        "now": lambda: float(step_now(x, y, *rows)[0].item()),
        "then": lambda: float(step_then(x, y)[0].item()),
    }
    return steps, lambda: flops.roof(time_gemms(gemms, "float32", "cpu"), gemms)


def mlx_steps(
    past: tuple[Any, Any], cfg: GPTConfig, batch: int, seed: int, masked: Path | None = None
) -> tuple[dict, Any]:
    import jai_mlx  # noqa: F401 - the fast BLAS

    # isort: split
    import mlx.core as mx
    from mlx.utils import tree_flatten

    from jai.benchmarks.mlx_side import time_gemms
    from jai.training.target_rows import target_rows
    from jai_mlx import model as now_model
    from jai_mlx import optim as now_optim

    x, y, cfg = one_batch(cfg, batch, seed, masked)
    rows = (mx.array(target_rows(y, multiple=cfg.block_size)),) if masked else ()  # as Trainer.batch
    x, y = mx.array(x), mx.array(y)
    tc = TrainConfig(batch_size=batch, warmup_steps=0, mask_prompt=masked is not None)
    now = now_model.GPT(cfg, seed=seed)
    then = past[0].GPT(cfg, seed=seed)
    then.load_weights(tree_flatten(now.parameters()))
    runs = {}
    for name, model, module, extra in (("now", now, now_optim, rows), ("then", then, past[1], ())):
        opt = module.make_optimizer(model, tc)
        step = module.make_train_step(model, opt, tc)

        def run(step=step, model=model, opt=opt, extra=extra) -> float:
            loss, norm = step(x, y, *extra)
            mx.eval(loss, norm, model.parameters(), opt.state)
            return loss.item()

        runs[name] = run
    gemms = flops.train_gemms(cfg, batch * cfg.block_size)
    return runs, lambda: flops.roof(time_gemms(gemms, "float32"), gemms)


def decode_steps(
    twin: str, past: tuple[Any, Any, Any], cfg: GPTConfig, batch: int, prompt: int, new: int, seed: int
) -> dict:
    """One greedy KV-cached generation of `new` tokens from the same prompts, today and at REV."""
    import numpy as np

    from jai.inference.sampling import SamplingConfig

    if twin == "mlx":
        import jai_mlx  # noqa: F401 - the fast BLAS
    now_model = importlib.import_module(f"jai_{twin}.model")
    now_gen = importlib.import_module(f"jai_{twin}.generate")
    now = now_model.GPT(cfg, seed=seed)
    then = past[0].GPT(cfg, seed=seed)
    if twin == "torch":
        then.load_state_dict(now.state_dict())
        now.eval()
        then.eval()
    else:
        from mlx.utils import tree_flatten

        then.load_weights(tree_flatten(now.parameters()))
    prompts = np.random.default_rng(seed).integers(0, cfg.vocab_size, size=(batch, prompt)).tolist()
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=new)
    return {
        "now": lambda: float(sum(map(len, now_gen.generate_tokens(now, prompts, sampling)))),
        "then": lambda: float(sum(map(len, past[2].generate_tokens(then, prompts, sampling)))),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jai.benchmarks.ab",
        description="A twin's training step today against the same twin at a git revision, in alternating "
        "rounds in one process.",
        epilog=__doc__.split("\n\n", 2)[-1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rev", required=True, help="the git revision to compare against (e.g. e5eb0a4)")
    p.add_argument("--twin", choices=("torch", "mlx"), default="torch")
    p.add_argument("--config", choices=sorted(SIZES), default="default")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--decode", action="store_true", help="time greedy KV-cached decoding instead of training")
    p.add_argument("--prompt", type=int, default=128, help="--decode: prompt tokens (default: 128)")
    p.add_argument("--new", type=int, default=32, help="--decode: new tokens (default: 32)")
    p.add_argument(
        "--mask-prompt",
        type=Path,
        metavar="DATA",
        help="train with the loss on answers alone, on a real batch from DATA (a `jai prepare` folder)",
    )
    args = p.parse_args(argv)
    cfg = SIZES[args.config][0]
    with tempfile.TemporaryDirectory(prefix="jai-ab-") as tmp:
        past = past_twin(args.rev, args.twin, Path(tmp))
        if args.decode:
            steps = decode_steps(args.twin, past, cfg, args.batch, args.prompt, args.new, args.seed)
            roof, tokens = None, args.batch * args.new
        else:
            make = torch_steps if args.twin == "torch" else mlx_steps
            steps, roof = make(past, cfg, args.batch, args.seed, args.mask_prompt)
            tokens = args.batch * cfg.block_size
        out = alternate(
            steps,
            args.rounds,
            args.warmup,
            1,
            tokens,
            roof=roof,
            progress=lambda: print(".", end="", flush=True, file=sys.stderr),
            flops_per_token=flops.train_flops_per_token(cfg),
        )
    print(file=sys.stderr)
    summary = {
        "rev": args.rev,
        "twin": args.twin,
        "batch": args.batch,
        "now/then": out["ratios"]["now/then"],
        "decode": args.decode,
        "mask_prompt": str(args.mask_prompt) if args.mask_prompt else None,
        "roof_ratio": {k: v["roof_ratio"]["median"] for k, v in out["runners"].items() if "roof_ratio" in v},
        "tokens_per_s": {k: v["tokens_per_s"]["median"] for k, v in out["runners"].items()},
        "first_loss": {k: v["losses"][0] for k, v in out["runners"].items()},
        "rounds": out["rounds"],
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
