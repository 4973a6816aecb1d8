"""Where a PyTorch twin's training step spends its time: `python -m jai.benchmarks.profile_step`.

torch.profiler records a few steps (after warm-up); every op's own CPU time goes to one part of the step:
the head + loss, attention, layer norm, GELU, the block matmuls, embeddings, AdamW, clipping, copies,
residual adds, other. An op inside a named part (the fused head + loss, AdamW's step, clipping) belongs
to it; otherwise the outermost op naming a part decides (a copy inside layer norm's backward is layer
norm's), and the generic kinds (matmul, copies, adds) only where nothing outer names a part.

    python -m jai.benchmarks.profile_step --batch 8 --layers 6 --heads 6 --width 384
    python -m jai.benchmarks.profile_step --batch 8 --layers 4 --heads 4 --width 256 --top 25
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from typing import Any

# part -> name fragments of the ops (and autograd nodes) that belong to it, checked in this order
PARTS = {
    "head + loss": ("head_loss", "LinearCrossEntropy"),
    "AdamW": ("Optimizer.step", "AdamW", "adamw"),
    "clipping": ("clip_grad_norm",),
    "attention": ("scaled_dot_product", "ScaledDotProduct", "flash_attention"),
    "layer norm": ("layer_norm", "LayerNorm"),
    "GELU": ("gelu", "Gelu"),
    "embedding": ("embedding", "Embedding"),
}
GENERIC = {
    "block matmuls": ("addmm", "Addmm", "aten::mm", "MmBackward", "aten::linear", "aten::matmul"),
    "copies": ("copy_", "clone", "contiguous", "_to_copy", "aten::cat", "aten::stack", "Transpose", "View"),
    "residual adds": ("aten::add", "AddBackward"),
}


def _part(names: list[str]) -> str:
    """`names`: the op and its ancestors, innermost first."""
    for part, frags in PARTS.items():
        if any(f in n for n in reversed(names) for f in frags):
            return part
    for n in names:
        for part, frags in GENERIC.items():
            if any(f in n for f in frags):
                return part
    return "other"


def profile(batch: int, layers: int, heads: int, width: int, context: int, vocab: int, steps: int) -> dict:
    import numpy as np
    import torch
    from torch.profiler import ProfilerActivity, record_function
    from torch.profiler import profile as torch_profile

    import jai_torch.model as model_mod
    from jai.config import GPTConfig
    from jai.train_config import TrainConfig
    from jai_torch.optim import make_optimizer, make_train_step

    fused = model_mod.linear_cross_entropy

    def labelled_head(*a: Any, **k: Any) -> torch.Tensor:
        with record_function("head_loss"):
            return fused(*a, **k)

    clip = torch.nn.utils.clip_grad_norm_

    def labelled_clip(*a: Any, **k: Any) -> torch.Tensor:
        with record_function("clip_grad_norm"):
            return clip(*a, **k)

    model_mod.linear_cross_entropy = labelled_head  # labels for the profile alone; the step is unchanged
    torch.nn.utils.clip_grad_norm_ = labelled_clip
    cfg = GPTConfig(n_layer=layers, n_head=heads, n_embd=width, block_size=context, vocab_size=vocab)
    tc = TrainConfig(batch_size=batch, warmup_steps=0)
    model = model_mod.GPT(cfg, seed=0)
    step = make_train_step(model, make_optimizer(model, tc), tc)
    xy = np.random.default_rng(0).integers(0, vocab, size=(1, batch, context + 1))
    x, y = torch.from_numpy(xy[..., :-1]), torch.from_numpy(xy[..., 1:])
    for _ in range(2):
        step(x, y)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step(x, y)
    by_part: dict[str, float] = defaultdict(float)
    by_op: dict[str, float] = defaultdict(float)
    for e in prof.events():
        names, p = [], e
        while p is not None:
            names.append(p.name)
            p = p.cpu_parent
        by_part[_part(names)] += e.self_cpu_time_total
        by_op[f"{_part(names)} | {e.name}"] += e.self_cpu_time_total
    total = sum(by_part.values())
    return {
        "shape": f"{layers}x{heads}x{width}, context {context}, vocab {vocab:,}, batch {batch}",
        "step_ms": total / 1e3 / steps,
        "parts": {k: v / total for k, v in sorted(by_part.items(), key=lambda kv: -kv[1])},
        "ops": {k: v / total for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])},
    }


def main(argv: list[str] | None = None) -> int:
    desc = __doc__.split("\n")[0]
    p = argparse.ArgumentParser(prog="python -m jai.benchmarks.profile_step", description=desc)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--vocab", type=int, default=24_000)
    p.add_argument("--steps", type=int, default=3, help="profiled steps, after two warm-up steps")
    p.add_argument("--top", type=int, default=15, help="ops listed (by their share of own CPU time)")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    a = p.parse_args(argv)
    r = profile(a.batch, a.layers, a.heads, a.width, a.context, a.vocab, a.steps)
    if a.json:
        print(json.dumps(r, indent=1))
        return 0
    print(f"{r['shape']}: {r['step_ms']:.0f} ms of op CPU time per step (profiled)")
    for part, share in r["parts"].items():
        print(f"  {part:<14} {share:6.1%}")
    print(f"top {a.top} ops (part | op):")
    for op, share in list(r["ops"].items())[: a.top]:
        print(f"  {share:6.1%}  {op}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
