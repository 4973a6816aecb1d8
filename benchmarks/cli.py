"""`jai bench`: the twins against each other and against transformers, a nanoGPT-style model and mlx-lm.

Every job runs in its own process (benchmarks/worker.py); training speed at the primary size is one job
per framework that alternates its runners in rounds (benchmarks/rounds.py). The results land in one
folder: results.json (every figure with its samples), report.md (the tables, with the targets), and PNG
plots. See docs/benchmarks.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from jai.benchmarks import machine, plan
from jai.benchmarks.plan import FRAMEWORK, PARTS, SIZES, TWINS, Job

ROOT = Path(__file__).resolve().parents[1]

EXAMPLES = """examples:
  jai bench --quick                            # smoke run on the tiny model, about a minute
  jai bench                                    # the default run, ~10 min on a quiet 2-core CPU
  jai bench --only train,peers --rounds 6      # training speed only: twins vs peers, 6 rounds
  jai bench --only train,peers --no-compile    # the same without the compiled PyTorch twin
  jai bench --only train,peers --batch 4 --blas-threads 1  # a short comparison on a busy machine
  jai bench --only train,peers,memory --batch 4,8,16 --no-compile  # issue 20's goals, met or not
  jai bench --full --out bench-results/full    # the long version, ~30-40 min on a 2-core CPU
  jai bench --data out/data --steps 100        # loss curves on a prepared corpus
  jai bench --blas-threads 1                   # MLX workers with one OpenBLAS thread (busy machines)
  jai bench --only serve --quick               # jai serve: batching vs one at a time, 1/8/32 clients
  jai bench --only scaling --quick             # data parallel: 1 vs 2 processes (torchrun, mlx.launch)
  jai bench --only lora --quick                # LoRA vs full fine-tuning: parameters, step time, memory
  jai bench --only retrieval                   # jai index: recall@1/@5, build time, size, query p50/p99

Progress goes to the terminal as a bar, or as plain lines when the output is not a terminal.
Results: <out>/results.json, <out>/report.md and PNG plots; see docs/benchmarks.md."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai bench",
        description="Benchmark the twins (training, inference, memory, loss curves) against each other and "
        "against transformers, a nanoGPT-style model and mlx-lm, on every device this machine has.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--only",
        default=None,
        help=f"comma-separated parts to run, of {','.join(PARTS)} "
        "(default: all; --quick: not quant, serve, scaling, lora); "
        "'peers' adds transformers and mlx-lm to the training and inference parts",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of about a minute: the tiny model (unless --config), few steps, short prompts, "
        "no profile, no compiled twin, no quant part (unless --only names it)",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="the long version (about 30-40 min on a 2-core CPU): 5 windows of 2 steps, 200-step loss "
        "curves at batch 4, 64 decode tokens, 5 repeats",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="results folder (default: bench-results/<timestamp>/)"
    )
    p.add_argument(
        "--config",
        choices=sorted(SIZES),
        default=None,
        help="model size (default: default = 6 layers, 6 heads, 384 wide, context 256, vocab 24000; "
        "with --quick: tiny)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="prepared token directory (train.bin + meta.json) for the loss curves; default: the "
        "bundled postings, prepared into the results folder (random tokens with --quick)",
    )
    p.add_argument(
        "--steps", type=int, default=None, help="loss-curve steps per twin (default: 60, quick: 5, full: 200)"
    )
    p.add_argument(
        "--windows",
        type=int,
        default=None,
        help="timed training windows of the larger size's runs (default: 3, full: 5)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="alternating rounds of the training-speed comparison, one timed step of every runner each "
        "(default: 4, full: 6)",
    )
    p.add_argument(
        "--batch",
        type=_batches,
        default=(),
        help="training batch(es) of the alternating rounds, e.g. 8 or 4,8,16: one rounds job per batch "
        "(default: the size's own, 16 at the default size); a smaller one keeps a run short on a busy "
        "machine",
    )
    p.add_argument(
        "--no-compile",
        action="store_true",
        help="leave out the compiled PyTorch twin (torch.compile takes minutes on a CPU)",
    )
    p.add_argument(
        "--devices",
        default="all",
        help="devices to run on: all (default), or a comma list of cpu, gpu (MLX: Metal/CUDA; "
        "PyTorch: CUDA/MPS)",
    )
    p.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="OPENBLAS_NUM_THREADS for the MLX workers (default: OpenBLAS's own, one per core). On a busy "
        "machine 1 keeps OpenBLAS's spinning worker threads from stealing the core MLX's own ops run on",
    )
    p.add_argument("--frameworks", default="mlx,torch", help="which twins to run (default: mlx,torch)")
    p.add_argument("--seed", type=int, default=1337, help="weights, batches and prompts (default: 1337)")
    p.add_argument(
        "--quant-ckpt",
        default=None,
        help="the float checkpoint the quant part quantizes and compares (e.g. out/run/ckpt, with --data "
        "its data dir for validation perplexity); default: the run's untrained starting weights",
    )
    return p


def _batches(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of batch sizes: {text!r}") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be positive: {text!r}")
    return out


def _parts(text: str | None, quick: bool = False) -> tuple[str, ...]:
    if text is None:  # the quant part is a run of its own (14 more processes): not in a smoke run
        slow = ("quant", "serve", "scaling", "lora", "retrieval")
        return tuple(p for p in PARTS if not (quick and p in slow))
    parts = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in parts if x not in PARTS]
    if bad:
        raise SystemExit(f"jai bench: unknown part(s) {', '.join(bad)}; choose from {', '.join(PARTS)}")
    return parts


def _worker_env(blas_threads: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if blas_threads:
        env["OPENBLAS_NUM_THREADS"] = str(blas_threads)
    env["PYTHONPATH"] = os.pathsep.join(x for x in (str(ROOT), env.get("PYTHONPATH", "")) if x)
    env.setdefault("MLX_ENABLE_TF32", "0")  # true fp32 on CUDA, as the twins' parity needs
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    env.setdefault("HF_HUB_OFFLINE", "1")  # peers load our checkpoint directory, never the hub
    return env


PLAIN_EVERY_S = 15.0  # a plain progress line at most this often within a job


def say(message: str) -> None:
    """One plain progress line on stdout (when no progress bar is showing: output not a terminal)."""
    print(f"jai bench: {message}", flush=True)


def run_job(job: Job, workdir: Path, bar: tqdm | None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one job in a fresh interpreter; return its output (ok, result or error, rss, wall).

    Progress: ticks move `bar`; where there is no bar showing (None, or tqdm disabled because the output
    is not a terminal) plain lines say when the job starts, how far it is every 15 s, and how it ended."""
    safe = job.name.replace(" ", "_").replace("/", "-")
    spec_path, out_path, log_path = (
        workdir / f"{safe}.spec.json",
        workdir / f"{safe}.out.json",
        workdir / f"{safe}.log",
    )
    spec_path.write_text(json.dumps(job.spec), encoding="utf-8")
    plain = bar is None or bool(getattr(bar, "disable", False))
    if bar is not None:
        bar.set_postfix_str(job.name)
    if plain:
        say(f"{job.name}: started")
    done = 0
    start = last = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jai.benchmarks.worker", str(spec_path), str(out_path)],
            cwd=ROOT,
            env=env or _worker_env(),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if line.strip() == "." and done < job.ticks:
                    done += 1
                    if bar is not None:
                        bar.update(1)
                    if plain and time.perf_counter() - last > PLAIN_EVERY_S:
                        last = time.perf_counter()
                        say(f"{job.name}: {done}/{job.ticks} steps, {last - start:.0f} s")
                elif line.strip() != ".":
                    log.write(line)
                if time.perf_counter() - start > job.timeout_s:
                    break
        finally:  # timed out, Ctrl-C or `kill`: the worker goes with us, not on alone in the background
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    if bar is not None and done < job.ticks:
        bar.update(job.ticks - done)
    if out_path.is_file():
        out = json.loads(out_path.read_text(encoding="utf-8"))
    else:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        out = {"ok": False, "error": f"worker exited with {proc.returncode} and no result", "log_tail": tail}
    if not out.get("ok"):
        out.setdefault("log_tail", log_path.read_text(encoding="utf-8", errors="replace")[-2000:])
    if plain:
        status = "done" if out.get("ok") else f"FAILED ({out.get('error', '?')[:120]})"
        say(f"{job.name}: {status} in {time.perf_counter() - start:.0f} s")
    return out


def _frameworks(requested: str) -> list[str]:
    wanted = [x.strip() for x in requested.split(",") if x.strip()]
    have = {
        "mlx": importlib.util.find_spec("mlx") is not None,
        "torch": importlib.util.find_spec("torch") is not None,
    }
    return [fw for fw in wanted if have.get(fw)]


def _devices(envs: dict[str, dict], requested: str) -> dict[str, list[str]]:
    out = {}
    for fw, env in envs.items():
        have = env.get("result", {}).get("devices", ["cpu"]) if env.get("ok") else []
        # name them as the runners do: MLX "gpu"; PyTorch "cuda" or "mps"
        if requested != "all":
            want = {x.strip() for x in requested.split(",")}
            have = [d for d in have if d in want or (d != "cpu" and "gpu" in want)]
        if have:
            out[fw] = have
    return out


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    # SIGTERM unwinds like Ctrl-C, so the running worker is stopped with us (run_job's finally)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    parts = _parts(args.only, args.quick)
    if args.quick and args.full:
        raise SystemExit("jai bench: --quick and --full exclude each other")
    if args.windows is not None and args.windows < 3:
        raise SystemExit("jai bench: --windows must be at least 3 (a median and a spread)")
    if args.rounds is not None and args.rounds < 3:
        raise SystemExit("jai bench: --rounds must be at least 3 (a median and a spread)")
    if args.config is None:
        args.config = "tiny" if args.quick else "default"
    settings = plan.settings_for(
        args.quick,
        args.steps,
        args.windows,
        full=args.full,
        rounds=args.rounds,
        compile=False if args.no_compile else None,
        train_batches=args.batch,
    )
    out_dir = args.out or Path("bench-results") / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if parts == ("retrieval",):  # no model, no framework: the index alone
        return _retrieval_only(args, out_dir)
    frameworks = _frameworks(args.frameworks)
    if not frameworks:
        print(
            "jai bench: neither MLX nor PyTorch is installed (pip install -e '.[mlx,torch]')", file=sys.stderr
        )
        return 2

    results: dict[str, Any] = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "argv": list(argv) if argv is not None else sys.argv[1:],
        "machine": machine.describe(),
        "size": args.config,
        "config": SIZES[args.config][0].__dict__.copy(),
        "settings": {**settings.__dict__, "blas_threads": args.blas_threads},
        "parts": list(parts),
        "jobs": [],
    }
    worker_env = _worker_env(args.blas_threads)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="jai-bench-") as tmp:
        work = Path(tmp)
        # 1. what each framework has here: versions, devices, and (MLX) which BLAS it runs
        envs = {}
        for fw in frameworks:
            job = Job(f"env {fw}", {"job": "env", "runner": TWINS[fw], "device": "cpu"}, 0, 300)
            envs[fw] = run_job(job, work, None, worker_env)
        results["frameworks"] = envs
        devices = _devices(envs, args.devices)
        results["devices"] = devices
        if "peers" in parts:
            for fw, key in (("torch", "transformers"), ("mlx", "mlx_lm")):
                if fw in envs and not envs[fw].get("result", {}).get(key):
                    results.setdefault("notes", []).append(
                        f"{key} is not installed: its peer runs are skipped"
                    )
        # 2. the weights every runner starts from: initialised once, by one twin, saved once
        data = str(args.data.resolve()) if args.data else None
        if "curves" in parts and data is None and not args.quick:
            data = str(_prepare_bundled(out_dir / "data"))
        ckpts = _init_checkpoints(args, settings, parts, data, frameworks, out_dir, work)
        results["data"] = data or "random tokens (seeded)"
        results["checkpoints"] = ckpts
        # 3. the jobs
        jobs = plan.make_jobs(args.config, parts, devices, settings, ckpts, data, args.seed)
        if data and "curves" in ckpts:
            from jai.benchmarks.data import vocab_of

            for job in jobs:
                if job.spec["job"] == "curve":
                    job.spec["config"]["vocab_size"] = vocab_of(data)
        jobs = [j for j in jobs if FRAMEWORK[j.spec["runner"]] in devices]
        jobs = [j for j in jobs if _peer_installed(j, envs)]
        for job in jobs:
            if job.spec["job"] == "rounds":
                job.spec["runners"] = [r for r in job.spec["runners"] if _installed(r, envs)]
        total = sum(j.ticks for j in jobs)
        say(f"{len(jobs)} jobs, {total} steps; results in {out_dir}")
        with tqdm(total=total, desc="jai bench", unit="step", disable=None) as bar:
            for job in jobs:
                job.result = run_job(job, work, bar, worker_env)
                results["jobs"].append({"name": job.name, "spec": job.spec, **job.result})
                if job.spec["job"] == "rounds" and job.result.get("ok"):
                    results["jobs"] += per_runner(results["jobs"][-1])
        if "quant" in parts:
            from jai.benchmarks import quant_bench

            base = args.quant_ckpt or ckpts[args.config]
            results["quant"] = quant_bench.run(
                base, data, devices, settings, args.seed, work, run_job, worker_env
            )
        if "serve" in parts:
            from jai.benchmarks import serve_bench

            seconds = 2.0 if args.quick else 15.0 if args.full else 6.0
            results["serve"] = serve_bench.run(
                args.config, devices, settings, args.seed, work, run_job, worker_env, seconds
            )
        if "scaling" in parts:  # data parallel: 1 vs 2 processes per twin (docs/distributed.md)
            from jai.benchmarks import scaling

            steps = 10 if args.quick else 40 if args.full else 20
            results["scaling"] = scaling.run(args.config, frameworks, args.seed, work, worker_env, steps)
        if "lora" in parts:  # LoRA against full fine-tuning from one base (jai train --lora)
            from jai.benchmarks import lora_bench

            steps = 8 if args.quick else 40 if args.full else 20
            results["lora"] = lora_bench.run(args.config, frameworks, args.seed, work, worker_env, steps)
    if "retrieval" in parts:
        from jai.benchmarks import retrieval_bench

        results["retrieval"] = retrieval_bench.run(10_000 if args.quick else 100_000, say=say)
    results["wall_s"] = time.perf_counter() - t0
    results["machine"]["loadavg_end"] = machine.loadavg()

    from jai.benchmarks import (
        goals,
        lora_bench,
        plots,
        quant_bench,
        report,
        retrieval_bench,
        scaling,
        serve_bench,
    )

    results["goals"] = goals.evaluate(results)
    results["plots"] = plots.write_all(results, out_dir)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    (out_dir / "report.md").write_text(
        report.render(results)
        + quant_bench.render(results.get("quant"))
        + serve_bench.render(results.get("serve"))
        + scaling.render(results.get("scaling"))
        + lora_bench.render(results.get("lora"))
        + retrieval_bench.render(results.get("retrieval")),
        encoding="utf-8",
    )
    failed = [j["name"] for j in results["jobs"] if not j.get("ok")]
    print(f"jai bench: {len(results['jobs'])} jobs in {results['wall_s']:.0f} s -> {out_dir}/report.md")
    for name in failed:
        print(f"  FAILED: {name} (see results.json)", file=sys.stderr)
    return 1 if failed else 0


def _retrieval_only(args: argparse.Namespace, out_dir: Path) -> int:
    """`jai bench --only retrieval`: the search index's figures, with the machine they were taken on."""
    from jai.benchmarks import retrieval_bench

    t0 = time.perf_counter()
    results = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "retrieval": retrieval_bench.run(10_000 if args.quick else 100_000, say=say),
    }
    results["wall_s"] = time.perf_counter() - t0
    results["machine"]["loadavg_end"] = machine.loadavg()
    (out_dir / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    (out_dir / "report.md").write_text(retrieval_bench.render(results["retrieval"]), encoding="utf-8")
    print(f"jai bench: retrieval in {results['wall_s']:.0f} s -> {out_dir}/report.md")
    return 0


def per_runner(rounds_job: dict[str, Any]) -> list[dict[str, Any]]:
    """A rounds job's figures as one "train" entry per runner, as separate training jobs report them
    (the report's tables read those). Their peak RSS is the shared process's: all its runners at once."""
    spec, res = rounds_job["spec"], rounds_job["result"]
    twin = spec["runners"][0]
    out = []
    for runner, r in res["runners"].items():
        s = {k: v for k, v in spec.items() if k != "runners"}
        s.update(job="train", runner=runner, roof=runner == twin, rounds_of=rounds_job["name"])
        result = {**r, "peak_bytes": None}
        if runner == twin and res.get("roof"):
            result["roof"] = res["roof"]
        name = f"train {spec['size']} {runner} {spec['device']} {spec['dtype']} b{spec['batch']}"
        out.append(
            {
                "name": name,
                "spec": s,
                "ok": True,
                "result": result,
                "rss_peak_bytes": rounds_job.get("rss_peak_bytes"),
                "shared_process": True,
            }
        )
    return out


def _installed(runner: str, envs: dict[str, dict]) -> bool:
    if runner == "transformers":
        return bool(envs.get("torch", {}).get("result", {}).get("transformers"))
    if runner == "mlx_lm":
        return bool(envs.get("mlx", {}).get("result", {}).get("mlx_lm"))
    return True


def _peer_installed(job: Job, envs: dict[str, dict]) -> bool:
    runner = job.spec["runner"]
    if runner == "transformers":
        return bool(envs.get("torch", {}).get("result", {}).get("transformers"))
    if runner == "mlx_lm":
        return bool(envs.get("mlx", {}).get("result", {}).get("mlx_lm"))
    return True


def _prepare_bundled(out: Path) -> Path:
    """The bundled postings, prepared (tokenizer + train.bin) for the loss curves."""
    if not (out / "train.bin").is_file():
        subprocess.run(
            [sys.executable, "-m", "jai.data.prepare", "--out", str(out)],
            cwd=ROOT,
            env=_worker_env(),
            check=True,
            capture_output=True,
            text=True,
        )
    return out


def _init_checkpoints(args, settings, parts, data, frameworks, out_dir: Path, work: Path) -> dict[str, str]:
    """One checkpoint per model size the run needs, written by one twin (PyTorch when installed)."""
    runner = "jai_torch" if "torch" in frameworks else "jai_mlx"
    sizes = {args.config: SIZES[args.config][0]}
    larger = plan.LARGER[args.config]
    if settings.larger and larger and "train" in parts:
        sizes[larger] = SIZES[larger][0]
    if "curves" in parts:
        cfg = SIZES[args.config][0]
        if data:
            from jai.benchmarks.data import vocab_of

            cfg = cfg.replace(vocab_size=vocab_of(data))
        sizes["curves"] = cfg
    out = {}
    for name, cfg in sizes.items():
        ckpt = work / "weights" / name  # only for this run: deleted with it
        if name == "curves" and cfg == sizes[args.config]:
            out[name] = out[args.config]
            continue
        job = Job(
            f"init {name}",
            {
                "job": "init_checkpoint",
                "runner": runner,
                "device": "cpu",
                "config": cfg.__dict__.copy(),
                "ckpt": str(ckpt),
                "seed": args.seed,
            },
            0,
            600,
        )
        res = run_job(job, work, None)
        if not res.get("ok"):
            raise SystemExit(
                "jai bench: could not write the starting weights: "
                f"{res.get('error')}\n{res.get('log_tail', '')}"
            )
        out[name] = str(ckpt)
    return out


if __name__ == "__main__":
    sys.exit(main())
