"""`jai bench` part "scaling": data-parallel training speed of each twin, 1 process against 2.

Each run is a real `jai train` (through `torchrun` / `mlx.launch` for 2 processes, docs/distributed.md) on
seeded random tokens; its metrics.jsonl gives every step's global tokens/sec (evaluation and checkpoint
saving excluded), and the figure is the median over the steps after the first few (warm-up, compilation).

Three runs per twin, same per-process batch B (so 2 processes train on a global batch of 2B, as a user
scaling out does):

- 1 process, 1 thread: the unit of work. Scaling efficiency = tokens/s(2 processes) / (2 x this).
- 1 process, every core: what one process gets from the same machine with intra-op threads. The ratio
  of 2 processes to this run is the practical question on one machine: is data parallelism worth it here?
- 2 processes, 1 thread each: data-parallel, gradients averaged across processes every step.

On a 2-core machine efficiency cannot pass 1 and is usually well below it: the two processes share the
two cores with the launcher, the all-reduce (gloo / MLX's ring over local TCP) copies every gradient
through the kernel each step, and on a tiny model that copy is comparable to the step itself. The point
of data parallelism is several GPUs or several hosts; these numbers measure the overhead of the
machinery on one host, not the speed-up a cluster gives.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from jai.benchmarks.data import RANDOM_TOKENS

RUNS = (("1 process, 1 thread", 1, 1), ("1 process, all cores", 1, 0), ("2 processes, 1 thread each", 2, 1))
WARM_STEPS = 3  # first steps left out: allocation, mx.compile tracing, DDP's first bucket rebuild
BIN = Path(sys.executable).parent


def write_data(path: Path, vocab: int, seed: int) -> Path:
    """Random tokens as `jai prepare` lays them out (train.bin, val.bin, meta.json)."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = {}
    for name, n in (("train", RANDOM_TOKENS), ("val", RANDOM_TOKENS // 16)):
        rng.integers(0, vocab, size=n).astype(np.uint16).tofile(path / f"{name}.bin")
        splits[name] = {"file": f"{name}.bin", "tokens": n, "samples": 1}
    meta = {"format": "jai-tokens-v1", "dtype": "uint16", "vocab_size": vocab, "splits": splits}
    (path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(twin: str, processes: int, out: Path, data: Path, cfg: Any, batch: int, steps: int) -> list[str]:
    jai = [str(BIN / "jai"), "train", "--backend", twin, "--device", "cpu", "--data", str(data)]
    jai += ["--out", str(out), "--no-progress", f"--max-steps={steps}", f"--batch-size={batch}"]
    jai += [f"--eval-interval={steps}", "--eval-batches=1", f"--ckpt-interval={steps}", "--warmup-steps=0"]
    jai += [f"--n-layer={cfg.n_layer}", f"--n-head={cfg.n_head}", f"--n-embd={cfg.n_embd}"]
    jai += [f"--block-size={cfg.block_size}"]
    if processes == 1:
        return jai
    if twin == "torch":
        return [str(BIN / "torchrun"), "--standalone", f"--nproc-per-node={processes}", *jai]
    port = free_port()  # the ring listens on port .. port + processes - 1
    return [str(BIN / "mlx.launch"), "-n", str(processes), "--starting-port", str(port), "--", *jai]


def measure(cmd: list[str], out: Path, threads: int, env: dict[str, str]) -> dict[str, Any]:
    env = dict(env)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if threads:
            env[key] = str(threads)
        else:
            env.pop(key, None)
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        return {"ok": False, "error": (done.stdout + done.stderr).strip().splitlines()[-1:]}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tok_s"] for r in records if "tok_s" in r and r["step"] > WARM_STEPS]
    return {"ok": True, "tokens_per_sec": statistics.median(rates), "steps_timed": len(rates)}


def run(
    size: str, frameworks: list[str], seed: int, work: Path, env: dict[str, str], steps: int = 20
) -> dict[str, Any]:
    """Every twin, 1 process (one thread, every core) and 2 processes: tokens/sec and efficiency (CPU)."""
    from jai.benchmarks.plan import SIZES, batch_for

    cfg = SIZES[size][0]
    batch = batch_for(size, "cpu")
    data = write_data(work / "scaling-data", cfg.vocab_size, seed)
    rows = []
    for twin in frameworks:
        row: dict[str, Any] = {"twin": twin}
        for label, processes, threads in RUNS:
            out = work / f"scaling-{twin}-{processes}-{threads}"
            cmd = command(twin, processes, out, data, cfg, batch, steps)
            row[label] = measure(cmd, out, threads, env)
            print(f"scaling {twin} {label}: {row[label]}", file=sys.stderr, flush=True)
        one, every, two = (row[label].get("tokens_per_sec") for label, _, _ in RUNS)
        row["efficiency"] = two / (2 * one) if one and two else None
        row["vs_all_cores"] = two / every if every and two else None
        rows.append(row)
    load = os.getloadavg()[0]  # over the last minute: how much else ran beside these runs
    return {
        "size": size,
        "batch_per_process": batch,
        "steps": steps,
        "cpus": os.cpu_count(),
        "loadavg": round(load, 2),
        "rows": rows,
    }


def render(scaling: dict[str, Any] | None) -> str:
    if not scaling:
        return ""
    fmt = lambda r: f"{r['tokens_per_sec']:,.0f}" if r.get("ok") else "failed"  # noqa: E731
    pct = lambda x: "-" if x is None else f"{x:.0%}"  # noqa: E731
    lines = [
        "",
        "## Data-parallel scaling (`torchrun` / `mlx.launch`, CPU)",
        "",
        f"Model size {scaling['size']}, batch {scaling['batch_per_process']} per process, "
        f"{scaling['steps']} steps (median tokens/s of the steps after the first {WARM_STEPS}), on "
        f"{scaling['cpus']} CPUs (load average {scaling.get('loadavg', '?')} at the end: above the CPU "
        "count, other work shared the cores and these figures are mostly noise). Two processes train on the "
        "doubled global batch.",
        "",
        "| twin | "
        + " | ".join(label for label, _, _ in RUNS)
        + " | efficiency | 2 processes vs all cores |",
        "|---|" + "---:|" * (len(RUNS) + 2),
    ]
    for row in scaling["rows"]:
        cells = [fmt(row[label]) for label, _, _ in RUNS]
        lines.append(
            f"| {row['twin']} | "
            + " | ".join(cells)
            + f" | {pct(row['efficiency'])} | {pct(row['vs_all_cores'])} |"
        )
    lines += [
        "",
        "Efficiency = tokens/s of 2 processes / (2 x tokens/s of 1 single-threaded process); 100% would be",
        "perfect linear scaling. On a 2-core machine the two processes share the cores with the launcher and",
        "every step sends each gradient through a local TCP all-reduce, so expect well under 100%; on a tiny",
        "model the all-reduce costs as much as the step. The last column compares data parallelism with one",
        "process using every core through threads: below 100% means threads are the better use of this",
        "machine. Data parallelism pays on several GPUs or hosts (docs/distributed.md), where each process",
        "has a device of its own and the all-reduce is a small part of a large step.",
        "",
    ]
    return "\n".join(lines)
