"""What a benchmark run does: the model sizes, the jobs, and how many steps each one times.

The default run is tuned to finish in about ten minutes on a quiet 2-core CPU, where one training step
of the default model (16 x 256 tokens) takes 3-8 s. Training speed at the default size is one job per
framework that alternates its runners in rounds (benchmarks/rounds.py: the twin, its peers and, for
PyTorch, the compiled twin; two warm-up steps each, then four rounds of one timed step per runner and the
GEMM roof), so that their ratios hold on a loaded machine. The twins alone at the larger size (batch 2
on the CPU) keep one process each: two warm-up steps and three timed one-step windows. Then a 60-step
loss curve per twin, three repeats of every inference figure, one profile. `--quick` is a smoke run of
about a minute on the tiny model; `--full` the long version. On a GPU the same plan runs unchanged.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from jai.config import GPTConfig

# name -> (model, training batch on a GPU, training batch on the CPU)
SIZES: dict[str, tuple[GPTConfig, int, int]] = {
    "tiny": (GPTConfig(vocab_size=256, block_size=32, n_layer=2, n_head=2, n_embd=64), 4, 4),
    "small": (GPTConfig(n_layer=4, n_head=4, n_embd=256), 8, 8),  # `jai run`'s model and batch
    "default": (GPTConfig(), 16, 16),  # nanoGPT's shakespeare_char shape, our vocabulary
    # GPT-2 small's shape. On the CPU at batch 2: a step at batch 16 would take minutes there.
    "large": (GPTConfig(n_layer=12, n_head=12, n_embd=768), 16, 2),
}
LARGER = {"tiny": "default", "small": "default", "default": "large", "large": None}

TWINS = {"torch": "jai_torch", "mlx": "jai_mlx"}
PEERS = {"torch": "transformers", "mlx": "mlx_lm"}
# Alternated with the twin in its framework's rounds job (the twin first: ratios are twin / runner).
# nanogpt: a nanoGPT-style model (benchmarks/nanogpt_ref.py); jai_torch_compiled: the twin's step with
# `compile=True` (`jai train --compile`).
ROUND_PEERS = {"torch": ["transformers", "nanogpt"], "mlx": ["mlx_lm"]}
COMPILED = {"torch": "jai_torch_compiled"}
FRAMEWORK = {
    "jai_torch": "torch",
    "jai_torch_compiled": "torch",
    "transformers": "torch",
    "nanogpt": "torch",
    "jai_mlx": "mlx",
    "mlx_lm": "mlx",
}
# +quant_bench, serve_bench, scaling, lora_bench, retrieval_bench
# memory: the PyTorch twin's and the nanoGPT-style model's training peak, one process each (issue 20's goal)
PARTS = (
    "train",
    "inference",
    "curves",
    "peers",
    "memory",
    "profile",
    "quant",
    "serve",
    "scaling",
    "lora",
    "retrieval",
)


@dataclass(frozen=True)
class Settings:
    # Two warm-up steps: MLX compiles the step on the first call and settles its optimizer state on the
    # second (the first timed window was 2-6x slower with one); PyTorch gets the same for symmetry.
    warmup: int = 2
    windows: int = 3  # timed windows per runner: the median and min-max of at least three
    steps_per_window: int = 1
    prompt_len: int = 128
    new_tokens: int = 32
    infer_batches: tuple[int, ...] = (1, 8)
    repeats: int = 3
    curve_steps: int = 60
    curve_batch: int = 2
    profile: bool = True
    larger: bool = True  # also time the twins' training at the next size up (training only)
    rounds: int = 4  # alternating rounds of the training-speed comparison (benchmarks/rounds.py)
    compile: bool = True  # also time the PyTorch twin's compiled step (jai train --compile)
    # the rounds jobs' batches, if not the size's own (jai bench --batch 4,8,16): one rounds job each
    train_batches: tuple[int, ...] = ()


# `jai bench --quick`: a smoke run of about a minute, on the tiny model unless --config says otherwise.
# No profile, no larger size, no compilation (minutes of it on a CPU): only what proves every part runs.
QUICK = Settings(
    warmup=1,
    windows=3,
    prompt_len=16,
    new_tokens=8,
    infer_batches=(1, 4),
    repeats=2,
    curve_steps=5,
    curve_batch=2,
    profile=False,
    larger=False,
    compile=False,
)

# `jai bench --full`: the long version (about 30-40 minutes on a 2-core CPU): more and longer windows,
# more repeats and decode tokens, a longer loss curve at a larger batch.
FULL = Settings(
    warmup=2,
    windows=5,
    steps_per_window=2,
    new_tokens=64,
    repeats=5,
    curve_steps=200,
    curve_batch=4,
    rounds=6,
)


@dataclass
class Job:
    """One worker process: `spec` is what it is told, `ticks` how many progress ticks it will print."""

    name: str
    spec: dict[str, Any]
    ticks: int
    timeout_s: float = 3600.0
    result: dict[str, Any] = field(default_factory=dict)


def settings_for(
    quick: bool,
    steps: int | None = None,
    windows: int | None = None,
    full: bool = False,
    rounds: int | None = None,
    compile: bool | None = None,
    train_batches: tuple[int, ...] = (),
) -> Settings:
    s = QUICK if quick else FULL if full else Settings()
    changes: dict[str, Any] = {}
    if steps is not None:
        changes["curve_steps"] = steps
    if windows is not None:
        changes["windows"] = windows
    if rounds is not None:
        changes["rounds"] = rounds
    if compile is not None:
        changes["compile"] = compile
    if train_batches:
        changes["train_batches"] = tuple(train_batches)
    return Settings(**{**s.__dict__, **changes})


def batch_for(size: str, device: str) -> int:
    _, gpu_batch, cpu_batch = SIZES[size]
    return cpu_batch if device == "cpu" else gpu_batch


def bf16_ok(framework: str, device: str) -> bool:
    # bfloat16 only where the device computes it fast: any GPU (CUDA, MPS, Metal); never the CPU.
    return device != "cpu"


def make_jobs(
    size: str,
    parts: tuple[str, ...],
    devices: dict[str, list[str]],
    settings: Settings,
    ckpt: dict[str, str],
    data: str | None,
    seed: int = 1337,
) -> list[Job]:
    """The jobs of one run. `devices` maps framework -> devices to run on; `ckpt` maps size -> the
    checkpoint directory every runner of that size loads (made by an init job beforehand)."""
    jobs: list[Job] = []
    s = settings
    sizes = [size] + ([LARGER[size]] if s.larger and LARGER[size] and "train" in parts else [])
    for fw, devs in devices.items():
        twin, peer = TWINS[fw], PEERS[fw]
        for dev in devs:
            dtypes = ["float32"] + (["bfloat16"] if bf16_ok(fw, dev) else [])
            for sz in sizes:
                cfg = SIZES[sz][0]
                if "train" not in parts:
                    continue
                if sz == size:  # the primary size: the twin and its peers in one job, alternating
                    runners = [twin] + (ROUND_PEERS[fw] if "peers" in parts else [])
                    runners += [COMPILED[fw]] if s.compile and fw in COMPILED else []
                    batches = s.train_batches or (batch_for(sz, dev),)
                    for dtype, b in itertools.product(dtypes, batches):
                        spec = {
                            "job": "rounds",
                            "runner": twin,
                            "runners": runners,
                            "size": sz,
                            "config": cfg.__dict__.copy(),
                            "batch": b,
                            "device": dev,
                            "dtype": dtype,
                            "ckpt": ckpt[sz],
                            "warmup": s.warmup,
                            "rounds": s.rounds,
                            "steps_per_window": s.steps_per_window,
                            "seed": seed,
                        }
                        ticks = len(runners) * (s.warmup + s.rounds)
                        name = f"train {sz} {'+'.join(runners)} {dev} {dtype} b{b}"
                        jobs.append(Job(name, spec, ticks))
                    continue
                for dtype in dtypes:
                    for runner in [twin]:
                        spec = {
                            "job": "train",
                            "runner": runner,
                            "size": sz,
                            "config": cfg.__dict__.copy(),
                            "batch": batch_for(sz, dev),
                            "device": dev,
                            "dtype": dtype,
                            "ckpt": ckpt[sz],
                            "warmup": s.warmup,
                            "windows": s.windows,
                            "steps_per_window": s.steps_per_window,
                            "roof": runner == twin,
                            "seed": seed,
                        }
                        jobs.append(Job(f"train {sz} {runner} {dev} {dtype}", spec, s.warmup + s.windows))
            cfg = SIZES[size][0]
            if "memory" in parts and fw == "torch":
                for runner in ("jai_torch", "nanogpt"):
                    spec = {
                        "job": "peak",
                        "runner": runner,
                        "size": size,
                        "config": cfg.__dict__.copy(),
                        "batch": batch_for(size, dev),
                        "device": dev,
                        "dtype": "float32",
                        "ckpt": ckpt[size],
                        "steps": 2,
                        "seed": seed,
                    }
                    jobs.append(Job(f"peak {size} {runner} {dev}", spec, 2))
            if "inference" in parts:
                runners = [twin] + ([peer] if "peers" in parts else [])
                for runner in runners:
                    for b in s.infer_batches:
                        if runner == "mlx_lm" and b != 1:
                            continue  # mlx_lm's batched generation needs a tokenizer; batch 1 only
                        prompt = min(s.prompt_len, cfg.block_size - s.new_tokens)
                        spec = {
                            "job": "infer",
                            "runner": runner,
                            "size": size,
                            "config": cfg.__dict__.copy(),
                            "batch": b,
                            "device": dev,
                            "dtype": "float32",
                            "ckpt": ckpt[size],
                            "prompt_len": prompt,
                            "new_tokens": s.new_tokens,
                            "repeats": s.repeats,
                            "seed": seed,
                        }
                        jobs.append(Job(f"infer {size} {runner} b{b} {dev}", spec, s.repeats))
            if "curves" in parts and dev == devs[0]:
                spec = {
                    "job": "curve",
                    "runner": twin,
                    "size": size,
                    "config": cfg.__dict__.copy(),
                    "batch": s.curve_batch,
                    "device": dev,
                    "dtype": "float32",
                    "ckpt": ckpt["curves"],
                    "steps": s.curve_steps,
                    "lr_warmup": max(1, s.curve_steps // 10),
                    "data": data,
                    "seed": seed,
                }
                jobs.append(Job(f"curve {size} {twin} {dev}", spec, s.curve_steps))
            if "profile" in parts and s.profile and fw == "mlx" and dev == "cpu":
                spec = {
                    "job": "profile",
                    "runner": twin,
                    "size": size,
                    "config": cfg.__dict__.copy(),
                    "batch": batch_for(size, dev),
                    "device": dev,
                    "seed": seed,
                }
                jobs.append(Job(f"profile {size} {twin} {dev}", spec, 13))
    return jobs
