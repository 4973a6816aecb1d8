"""Answer quality against training tokens, for many training settings at once: the measurement behind
`jai run`'s defaults (docs/quality.md).

    python -m jai.benchmarks.answer_sweep --grid copy --device cuda --parallel 4 --out sweep
    python -m jai.benchmarks.answer_sweep --grid copy --device cpu --parallel 1 --only s4-varied-2M
    OMP_NUM_THREADS=1 python -m jai.benchmarks.answer_sweep --grid cpu --parallel 2 --out sweep-cpu

Each run is a plain `jai train` with its whole schedule planned for its token budget (warmup and cosine
end at --max-steps), then a plain `jai eval` of the result: a run at 2M tokens is not a checkpoint of
the 4M run, it is what a user who has 2M tokens' time gets. Runs share nothing but the prepared data, so
they can run side by side (--parallel) on a GPU. Every result lands in <out>/results.jsonl as it comes,
so an interrupted sweep keeps what it measured and reruns only the rest. The cpu grid compares shapes in
equal CPU minutes rather than equal tokens: each run's steps are make run's times its measured speed
(`python -m jai.benchmarks.shape_ab`), so the steps, not the load, fix what it trains.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

CONTEXT = 256


@dataclass(frozen=True)
class Run:
    name: str
    data: str  # a key of DATA
    n_layer: int
    n_head: int
    n_embd: int
    tokens: int  # the budget: max_steps = tokens / (batch x context)
    lr: float = 2e-3
    batch: int = 8
    mask_prompt: bool = False
    dtype: str = "float32"
    extra: tuple[str, ...] = field(default_factory=tuple)

    @property
    def steps(self) -> int:
        return max(10, round(self.tokens / (self.batch * CONTEXT)))


TOKENIZER_OF = "TOKENIZER_OF:"  # an argument naming another data set's tokenizer.json (same token ids)

# name -> `jai prepare` arguments (the bundled sample is always the first input)
DATA = {
    "bundled": [],
    "varied": ["--varied", "3000"],
    "varied10k": ["--varied", "10000"],
    "v1k": ["--varied", "1000"],
    "v1k-drills": ["--varied", "1000", "--drills"],
    "v3k-drills": ["--varied", "3000", "--drills"],
    "v1k-drills-digits": ["--varied", "1000", "--drills", "--split-digits"],
    "v1k-drills-echo": ["--varied", "1000", "--drills", "--echo"],
    "v1k-drills-echo-digits": ["--varied", "1000", "--drills", "--echo", "--split-digits"],
    # echo on n thousand more generated headers, with the echo set's tokenizer (the same token ids)
    **{
        f"v1k-drills-echo-x{n}k": ["--varied", "1000", "--drills", "--echo", "--echo-extra", f"{n}000",
                                   "--tokenizer", f"{TOKENIZER_OF}v1k-drills-echo"]
        for n in (3, 8)
    },
}  # fmt: skip

SHAPES = {"s3n": (3, 2, 128), "s3": (3, 3, 192), "s4": (4, 4, 256), "s6": (6, 6, 384)}


def copy_grid() -> list[Run]:
    """Does copying appear, and what brings it: data, loss on answers, shape, learning rate, tokens."""
    runs = []
    for tokens in (1_000_000, 2_000_000, 4_000_000):
        m = f"{tokens // 1_000_000}M"
        for data in ("bundled", "varied"):
            runs.append(Run(f"s4-{data}-{m}", data, *SHAPES["s4"], tokens))
        runs.append(Run(f"s4-varied-mask-{m}", "varied", *SHAPES["s4"], tokens, mask_prompt=True))
        for shape in ("s3", "s6"):
            runs.append(Run(f"{shape}-varied-{m}", "varied", *SHAPES[shape], tokens))
    for lr in (1e-3, 4e-3):
        runs.append(Run(f"s4-varied-lr{lr:g}-2M", "varied", *SHAPES["s4"], 2_000_000, lr=lr))
    runs.append(Run("s6-varied-lr1e-3-2M", "varied", *SHAPES["s6"], 2_000_000, lr=1e-3))
    runs.append(Run("s4-varied-b16-4M", "varied", *SHAPES["s4"], 4_000_000, batch=16))
    runs.append(Run("s4-varied-8M", "varied", *SHAPES["s4"], 8_000_000))
    runs.append(Run("s6-varied-8M", "varied", *SHAPES["s6"], 8_000_000))
    runs.append(Run("s4-varied10k-4M", "varied10k", *SHAPES["s4"], 4_000_000))
    runs.append(Run("s4-varied10k-8M", "varied10k", *SHAPES["s4"], 8_000_000))
    return runs


def smoke_grid() -> list[Run]:
    """Two tiny runs: the sweep itself works (tests, and a first look on a new machine)."""
    return [Run("smoke-a", "bundled", 1, 2, 64, 20_000), Run("smoke-b", "bundled", 1, 2, 64, 20_000, lr=1e-2)]


MAKE_RUN_STEPS = 645  # what make run planned on a quiet 2-core AMD EPYC: 1.32M tokens at batch 8


def budget_grid() -> list[Run]:
    """jai run's data and settings at make run's token budget (and multiples of it: faster machines,
    bf16, --minutes 60), repeated with other seeds to show the spread of a single run."""
    s4, one = SHAPES["s4"], MAKE_RUN_STEPS * 8 * CONTEXT
    runs = [Run(f"b1-{data}", data, *s4, one, lr=4e-3) for data in ("v1k", "v1k-drills", "v3k-drills")]
    runs += [
        Run(f"b1-v1k-drills-seed{seed}", "v1k-drills", *s4, one, lr=4e-3, extra=("--seed", str(seed)))
        for seed in (1, 2)
    ]
    runs.append(Run("b1-v1k-drills-lr3e-3", "v1k-drills", *s4, one, lr=3e-3))
    runs.append(Run("b1-v1k-drills-bf16", "v1k-drills", *s4, one, lr=4e-3, dtype="bfloat16"))
    for times in (1.4, 2, 4, 6):
        runs.append(Run(f"b{times:g}-v1k-drills", "v1k-drills", *s4, round(times * one), lr=4e-3))
    runs.append(Run("b6-v3k-drills", "v3k-drills", *s4, 6 * one, lr=4e-3))
    runs.append(Run("b6-s6-v1k-drills", "v1k-drills", *SHAPES["s6"], 6 * one, lr=2e-3))
    return runs


# Speed of a training step relative to the small shape, alternating rounds in one process on a 2-core
# AMD EPYC 7002 (batch 8 x 256, vocab 24,000, float32; docs/quality.md): 3 x 2 x 128 is 2.13x, the
# tiny shape 1.56x, the seed's 0.55x. The head (256 x 24,000) is most of a small model's step, so
# fewer layers buy little.
CPU_SPEED = {"s3n": 2.13, "s3": 1.56, "s4": 1.0, "s6": 0.55}
PROMPT_LOSS_SPEED = {0.25: 1.6, 0.5: 1.4}  # the same, for --prompt-loss (answers are 10% of targets)


def cpu_grid() -> list[Run]:
    """Three shapes in the same CPU minutes (make run's), with jai run's data and learning rate: the
    tokens each trains are make run's times its measured speed."""
    one = MAKE_RUN_STEPS * 8 * CONTEXT
    return [
        Run(
            f"cpu-{shape}",
            "v1k-drills",
            *SHAPES[shape],
            round(speed * one),
            lr=2e-3 if shape == "s6" else 4e-3,
        )
        for shape, speed in CPU_SPEED.items()
    ] + [
        # the small shape with a share of the posting's targets in the loss: the head skips the other
        # rows, so a step is faster (PROMPT_LOSS_SPEED) and the same minutes train more tokens
        Run(f"cpu-s4-pl{share:g}", "v1k-drills", *SHAPES["s4"], round(speed * one), lr=4e-3,
            extra=("--prompt-loss", f"{share:g}"))
        for share, speed in PROMPT_LOSS_SPEED.items()
    ] + [
        # the winner of the above (the tiny shape) again: with half the other targets (1.54x a step,
        # 4 rounds) and with another seed, the spread of one run
        Run("cpu-s3-pl0.5", "v1k-drills", *SHAPES["s3"], round(CPU_SPEED["s3"] * 1.5 * one), lr=4e-3,
            extra=("--prompt-loss", "0.5")),
        Run("cpu-s3-seed1", "v1k-drills", *SHAPES["s3"], round(CPU_SPEED["s3"] * one), lr=4e-3,
            extra=("--seed", "1")),
        # jai run's recipe with every digit its own token (numbers copied digit by digit), and with a
        # higher learning rate on top
        Run("cpu-s3-pl0.5-digits", "v1k-drills-digits", *SHAPES["s3"], round(CPU_SPEED["s3"] * 1.5 * one),
            lr=4e-3, extra=("--prompt-loss", "0.5")),
        Run("cpu-s3-pl0.5-digits-lr6e-3", "v1k-drills-digits", *SHAPES["s3"],
            round(CPU_SPEED["s3"] * 1.5 * one), lr=6e-3, extra=("--prompt-loss", "0.5")),
        # jai run's recipe with each training header also asked back whole (--echo), alone and with digits
        *(Run(f"cpu-s3-pl0.5-{data[11:]}", data, *SHAPES["s3"], round(CPU_SPEED["s3"] * 1.5 * one),
              lr=4e-3, extra=("--prompt-loss", "0.5"))
          for data in ("v1k-drills-echo", "v1k-drills-echo-digits")),
        # echo again with another seed (the spread of one run) and with a higher learning rate
        Run("cpu-s3-pl0.5-echo-seed1", "v1k-drills-echo", *SHAPES["s3"], round(CPU_SPEED["s3"] * 1.5 * one),
            lr=4e-3, extra=("--prompt-loss", "0.5", "--seed", "1")),
        Run("cpu-s3-pl0.5-echo-lr6e-3", "v1k-drills-echo", *SHAPES["s3"], round(CPU_SPEED["s3"] * 1.5 * one),
            lr=6e-3, extra=("--prompt-loss", "0.5")),
        # more echo, on headers of generated postings that appear nowhere else (values seen once)
        *(Run(f"cpu-s3-pl0.5-echo-{x}", f"v1k-drills-echo-{x}", *SHAPES["s3"],
              round(CPU_SPEED["s3"] * 1.5 * one), lr=4e-3, extra=("--prompt-loss", "0.5"))
          for x in ("x3k", "x8k")),
        Run("cpu-s3-pl0.5-echo-lr6e-3-seed1", "v1k-drills-echo", *SHAPES["s3"],
            round(CPU_SPEED["s3"] * 1.5 * one), lr=6e-3, extra=("--prompt-loss", "0.5", "--seed", "1")),
    ]  # fmt: skip


GRIDS = {"copy": copy_grid, "budget": budget_grid, "cpu": cpu_grid, "smoke": smoke_grid}


def _tokenizer_sources(name: str) -> list[str]:
    return [a.removeprefix(TOKENIZER_OF) for a in DATA[name] if a.startswith(TOKENIZER_OF)]


class Datasets:
    """Every data set the runs need, prepared side by side in the background; a run waits for its own."""

    def __init__(self, out: Path, jai: list[str], names: set[str]) -> None:
        self.out, self.jai, self.lock, self.procs = out, jai, threading.Lock(), {}
        # A data set that reuses another's tokenizer starts once that one is prepared.
        for name in sorted(names, key=lambda n: len(_tokenizer_sources(n))):
            for source in _tokenizer_sources(name):
                if source not in self.procs:
                    self._start(source)
                self.ready(source)
            self._start(name)

    def _start(self, name: str) -> None:
        target = self.out / "data" / name
        if (target / "meta.json").is_file():
            return
        args = [
            str(self.out / "data" / a.removeprefix(TOKENIZER_OF) / "tokenizer.json")
            if a.startswith(TOKENIZER_OF)
            else a
            for a in DATA[name]
        ]
        cmd = [*self.jai, "prepare", "--out", str(target), *args]
        self.procs[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def ready(self, name: str) -> Path:
        with self.lock:
            proc = self.procs.pop(name, None)
            if proc is not None:
                _, err = proc.communicate()
                if proc.returncode:
                    raise RuntimeError(f"jai prepare for {name!r} failed:\n{err}")
        return self.out / "data" / name


def train_and_eval(run: Run, out: Path, data: Path, jai: list[str], device: str, answers: int) -> dict:
    run_dir = out / "runs" / run.name
    cmd = [
        *jai, "train", "--backend", "torch", "--device", device, "--dtype", run.dtype,
        "--data", str(data), "--out", str(run_dir),
        "--n-layer", str(run.n_layer), "--n-head", str(run.n_head), "--n-embd", str(run.n_embd),
        "--batch-size", str(run.batch), "--max-steps", str(run.steps),
        "--lr", f"{run.lr:g}", "--min-lr", f"{run.lr / 10:g}", "--warmup-steps", str(max(1, run.steps // 10)),
        "--eval-interval", str(run.steps), "--eval-batches", "4", "--ckpt-interval", str(run.steps),
        "--align-samples", "--mask-prompt" if run.mask_prompt else "--no-mask-prompt", "--no-progress",
        *run.extra,
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    train_s = time.perf_counter() - t0
    result = run_dir / "eval.json"
    subprocess.run(
        [*jai, "eval", str(run_dir), "--device", device, "--answers", str(answers), "--loss-tokens", "16384",
         "--json", str(result), "--no-progress"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    scores = json.loads(result.read_text(encoding="utf-8"))
    a = scores["answers"]
    return {
        **asdict(run),
        "steps": run.steps,
        "train_seconds": round(train_s, 1),
        "val_loss": scores["loss"]["loss"],
        "fields_exact": a["fields"]["exact"],
        "fields_f1": a["fields"]["f1"],
        "long_f1": a["long"]["f1"],
        "all_f1": a["all"]["f1"],
        "all_exact": a["all"]["exact"],
        "repeated": a["repeated"],
        "by_kind": {k: [v["exact"], v["f1"]] for k, v in a["by_kind"].items()},
        "samples": [
            {k: s[k] for k in ("kind", "lang", "prediction", "reference")} for s in scores["samples"][:40]
        ],
    }


# The curves docs/quality.md shows: one line per setting, over the token budgets it was run at.
SERIES = {
    "small 4×4×256, +3k varied": lambda r: (
        r["n_layer"] == 4
        and r["data"] == "varied"
        and not r["mask_prompt"]
        and r["lr"] == 2e-3
        and r["batch"] == 8
    ),
    "seed 6×6×384, +3k varied": lambda r: r["n_layer"] == 6 and r["data"] == "varied" and r["lr"] == 2e-3,
    "tiny 3×3×192, +3k varied": lambda r: r["n_layer"] == 3,
    "small, bundled only": lambda r: r["n_layer"] == 4 and r["data"] == "bundled",
    "small, +3k varied, --mask-prompt": lambda r: r["n_layer"] == 4 and r["mask_prompt"],
}


def plot(results: Path, png: Path) -> None:
    """Field exact match, all-kinds F1 and repetition against training tokens, one line per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    titles = {
        "fields_exact": "field questions: exact match",
        "all_f1": "all kinds: char F1",
        "repeated": "answers repeating a line",
    }
    for label, pick in SERIES.items():
        points = sorted((r["tokens"], r) for r in rows if pick(r))
        for ax, key in zip(axes, titles, strict=True):
            ax.plot([t / 1e6 for t, _ in points], [r[key] for _, r in points], marker="o", label=label)
    for ax, title in zip(axes, titles.values(), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8], ["1M", "2M", "4M", "8M"])
        ax.set_xlabel("training tokens (batch 8 × 256)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Answers on held-out postings against training tokens (one run per point)")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", choices=GRIDS, default="copy")
    p.add_argument("--only", nargs="*", help="run only these names")
    p.add_argument("--device", default="auto")
    p.add_argument("--parallel", type=int, default=1, help="runs at once (a GPU takes several)")
    p.add_argument("--answers", type=int, default=176, help="held-out questions per evaluation")
    p.add_argument("--out", type=Path, default=Path("sweep"))
    p.add_argument("--plot", type=Path, metavar="PNG", help="only plot <out>/results.jsonl into this file")
    args = p.parse_args(argv)
    if args.plot:
        plot(args.out / "results.jsonl", args.plot)
        return 0

    script = Path(sys.executable).parent / "jai"  # the console script beside this Python
    jai = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "import sys; from jai.cli import main; sys.exit(main())"]
    )
    runs = [r for r in GRIDS[args.grid]() if not args.only or r.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = set()
    if results.exists():
        done = {json.loads(line)["name"] for line in results.read_text(encoding="utf-8").splitlines()}
    runs = [r for r in runs if r.name not in done]
    datasets = Datasets(args.out, jai, {r.data for r in runs})
    # The longest runs first, so the pool does not end waiting on one of them.
    runs.sort(key=lambda r: -r.tokens * r.n_embd)

    def one(run: Run) -> None:
        try:
            row = train_and_eval(run, args.out, datasets.ready(run.data), jai, args.device, args.answers)
        except subprocess.CalledProcessError as e:
            print(f"{run.name}: failed\n{e.stderr[-2000:]}", flush=True)
            return
        except RuntimeError as e:
            print(f"{run.name}: {e}", flush=True)
            return
        with results.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(
            f"{run.name:<24} {row['train_seconds']:>6.0f}s loss {row['val_loss']:.3f} fields exact "
            f"{row['fields_exact']:.3f} f1 {row['fields_f1']:.3f} long f1 {row['long_f1']:.3f} "
            f"repeated {row['repeated']:.2f}",
            flush=True,
        )

    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(one, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
