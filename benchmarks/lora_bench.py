"""`jai bench` part "lora": LoRA against full fine-tuning, per twin, from one base model.

Each run is a real `jai train --init-from BASE` (plain, or with `--lora 8 --lora-targets c_attn,c_proj,
c_fc`) on seeded random tokens, in a process of its own so that its peak memory is its own. The two
kinds alternate over `ROUNDS` rounds (full, LoRA, full, LoRA, ...), so a machine that gets busier
during the part slows both alike; the report gives the median of the rounds and their range.

- trainable parameters: counted from the config (jai/checkpoint/lora.py's adapter shapes), not measured.
- step time: the median of each run's steps after the first few (metrics.jsonl; evaluation and saving
  excluded), from tokens/s.
- peak memory: the process's peak RSS. On the CPU that is the model, the optimizer, activations and the
  framework; on a GPU it misses the device's memory (the report says which device ran).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from jai.benchmarks.scaling import BIN, WARM_STEPS, write_data
from jai.checkpoint.lora import LoraConfig, adapter_shapes

ROUNDS = 2
LORA = LoraConfig(rank=8, alpha=16.0, targets=("c_attn", "c_proj", "c_fc"))
KINDS = ("full", "lora")
# Runs `jai train` and writes the process's peak RSS (KiB on Linux, bytes on macOS) beside its output.
PEAK = (
    "import json, resource, sys\n"
    "from jai.cli import main\n"
    "code = main(sys.argv[2:])\n"
    "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "open(sys.argv[1], 'w').write(json.dumps(peak * (1 if sys.platform == 'darwin' else 1024)))\n"
    "sys.exit(code)\n"
)


def train_args(twin: str, out: Path, data: Path, cfg: Any, batch: int, steps: int) -> list[str]:
    args = ["train", "--backend", twin, "--device", "cpu", "--data", str(data), "--out", str(out)]
    args += ["--no-progress", f"--max-steps={steps}", f"--batch-size={batch}", "--warmup-steps=0"]
    args += [f"--eval-interval={steps}", "--eval-batches=1", f"--ckpt-interval={steps}"]
    shape = [f"--n-layer={cfg.n_layer}", f"--n-head={cfg.n_head}", f"--n-embd={cfg.n_embd}"]
    return [*args, *shape, f"--block-size={cfg.block_size}"]


def measure(args: list[str], out: Path, env: dict[str, str]) -> dict[str, Any]:
    peak_file = out.parent / f"{out.name}.peak"
    cmd = [sys.executable, "-c", PEAK, str(peak_file), *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        return {"ok": False, "error": (done.stdout + done.stderr).strip().splitlines()[-1:]}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tok_s"] for r in records if "tok_s" in r and r["step"] > WARM_STEPS]
    return {
        "ok": True,
        "tokens_per_sec": statistics.median(rates),
        "peak_bytes": json.loads(peak_file.read_text()),
    }


def run(
    size: str, frameworks: list[str], seed: int, work: Path, env: dict[str, str], steps: int = 20
) -> dict[str, Any]:
    """Every twin: full fine-tuning and LoRA from the same base, alternating; trainable parameters, step
    time and peak memory of each."""
    from jai.benchmarks.plan import SIZES, batch_for

    cfg = SIZES[size][0]
    batch = batch_for(size, "cpu")
    data = write_data(work / "lora-data", cfg.vocab_size, seed)
    trainable = {"full": cfg.num_params(), "lora": sum(a * b for a, b in adapter_shapes(cfg, LORA).values())}
    rows = []
    for twin in frameworks:
        base = work / f"lora-base-{twin}"
        subprocess.run(
            [str(BIN / "jai"), *train_args(twin, base, data, cfg, batch, 1)], env=env, capture_output=True,
            check=True, timeout=1800,
        )  # fmt: skip
        extra = {"full": [], "lora": ["--lora", str(LORA.rank), "--lora-targets", ",".join(LORA.targets)]}
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for round_ in range(ROUNDS):
            for kind in KINDS:
                out = work / f"lora-{twin}-{kind}-{round_}"
                args = [*train_args(twin, out, data, cfg, batch, steps), "--init-from", str(base / "ckpt")]
                runs[kind].append(measure([*args, *extra[kind]], out, env))
                print(f"lora {twin} {kind} round {round_ + 1}: {runs[kind][-1]}", file=sys.stderr, flush=True)
        row: dict[str, Any] = {"twin": twin}
        for kind in KINDS:
            good = [r for r in runs[kind] if r["ok"]]
            step_ms = [batch * cfg.block_size / r["tokens_per_sec"] * 1e3 for r in good]
            row[kind] = {
                "trainable": trainable[kind],
                "step_ms": statistics.median(step_ms) if good else None,
                "step_ms_range": [min(step_ms), max(step_ms)] if good else None,
                "peak_mb": max(r["peak_bytes"] for r in good) / 2**20 if good else None,
                "failed": len(runs[kind]) - len(good),
            }
        rows.append(row)
    return {
        "size": size,
        "batch": batch,
        "steps": steps,
        "rounds": ROUNDS,
        "lora": LORA.to_dict(),
        "rows": rows,
    }


def render(lora: dict[str, Any] | None) -> str:
    if not lora:
        return ""
    num = lambda x, f: "-" if x is None else format(x, f)  # noqa: E731
    lines = [
        "",
        "## LoRA against full fine-tuning (CPU)",
        "",
        f"Model size {lora['size']}, batch {lora['batch']}, {lora['steps']} steps per run from one base, "
        f"full and LoRA (rank {lora['lora']['rank']} on {', '.join(lora['lora']['targets'])}) alternating "
        f"over {lora['rounds']} rounds; step time is the median over rounds (range in brackets).",
        "",
        "| twin | kind | trainable parameters | step (ms) | peak RSS (MB) |",
        "|---|---|---:|---:|---:|",
    ]
    for row in lora["rows"]:
        for kind in KINDS:
            r = row[kind]
            spread = (
                f" [{r['step_ms_range'][0]:.0f}-{r['step_ms_range'][1]:.0f}]" if r["step_ms_range"] else ""
            )
            lines.append(
                f"| {row['twin']} | {kind} | {r['trainable']:,} | {num(r['step_ms'], '.0f')}{spread} | "
                f"{num(r['peak_mb'], ',.0f')} |"
            )
    lines += [
        "",
        "LoRA trains a few percent of the parameters, so Adam's moments and the weight update shrink with",
        "them; the forward and backward passes still run through the whole frozen model (the gradients flow",
        "back to the first adapted layer), so the step time falls far less than the parameter count.",
        "",
    ]
    return "\n".join(lines)
