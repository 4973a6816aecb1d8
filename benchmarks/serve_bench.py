"""`jai bench`'s serving part: `jai serve` under load, with and without dynamic batching, per twin.

For each twin and device, a real `jai serve` process is started twice: batching (up to 32 requests
decode together) and one request at a time (`--no-batching`). Clients in this process then keep
`concurrency` requests in flight (1, 8 and 32) for a fixed time, each a greedy `/v1/completions` of
`settings.new_tokens` tokens after a prompt of about `settings.prompt_len`; a request that ends is
replaced at once. Measured per cell: requests/s and generated tokens/s (over the whole cell, the
requests still in flight at the end included), p50 and p99 request latency, and the requests refused
(429; none are expected with the queue bound used here).

The model is the run's size with fresh seeded weights and a small tokenizer trained on a few posting
lines (the vocabulary only has to cover the prompt; the model's own is kept). Contexts below 64 are
raised to 64 so that the prompt and the answer fit. The clients share the machine with the server: on
a 2-core CPU they take part of a core at concurrency 32, the same for both modes.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jai.benchmarks.plan import SIZES, TWINS, Job, Settings

CONCURRENCY = (1, 8, 32)
MAX_BATCH = 32
MAX_WAITING = 64
MIN_CONTEXT = 64
TEXT = [
    "백엔드 개발자를 모집합니다. 자격 요건: Python 3년 이상, SQL, 클라우드 경험 우대.",
    "We are hiring a backend engineer in Seoul. Salary: negotiable. Remote work two days a week.",
    "데이터 엔지니어 채용, 근무지: 서울 강남구, 연봉 협의, 스톡옵션 제공.",
    "Requirements: SQL, Spark, Airflow, and a love of clean pipelines and honest tests.",
] * 8


def make_checkpoint(
    size: str, seed: int, work: Path, run_job: Callable[..., dict[str, Any]], runner: str
) -> Path:
    """Fresh weights of the run's size (written by a twin's worker) and a small tokenizer beside them."""
    from jai.tokenizer import Tokenizer

    ckpt = work / "serve" / "ckpt"
    tok = Tokenizer.train(TEXT, vocab_size=400, min_frequency=1, show_progress=False)
    cfg = SIZES[size][0]
    cfg = cfg.replace(
        vocab_size=max(cfg.vocab_size, tok.vocab_size), block_size=max(cfg.block_size, MIN_CONTEXT)
    )
    spec = {"job": "init_checkpoint", "runner": runner, "device": "cpu", "config": cfg.__dict__.copy()}
    res = run_job(Job("init serve", {**spec, "ckpt": str(ckpt), "seed": seed}, 0, 600), work, None)
    if not res.get("ok"):
        raise RuntimeError(f"could not write the serving checkpoint: {res.get('error')}")
    tok.save(ckpt / "tokenizer.json")
    return ckpt


class Server:
    """`jai serve` in a subprocess on a free loopback port; its log in a file."""

    def __init__(self, ckpt: Path, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jai.cli", "serve", str(ckpt), "--port", "0", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            found = re.search(rb"running on (http://127\.0\.0\.1:\d+)", log.read_bytes())
            if found:
                self.url = found.group(1).decode()
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"jai serve did not start:\n{log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def load(url: str, body: dict[str, Any], concurrency: int, seconds: float) -> dict[str, Any]:
    """Keep `concurrency` requests in flight for `seconds`; the figures of the cell."""
    import httpx

    latencies: list[float] = []
    tokens = refused = errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        start = time.perf_counter()
        until = start + seconds

        async def worker() -> None:
            nonlocal tokens, refused, errors
            while time.perf_counter() < until:
                t0 = time.perf_counter()
                r = await client.post("/v1/completions", json=body)
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                    tokens += r.json()["usage"]["completion_tokens"]
                elif r.status_code == 429:
                    refused += 1
                    await asyncio.sleep(0.05)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None  # noqa: E731
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "seconds": wall,
        "requests_per_s": len(latencies) / wall,
        "tokens_per_s": tokens / wall,
        "p50_s": statistics.median(latencies) if latencies else None,
        "p99_s": pick(0.99),
        "refused": refused,
        "errors": errors,
    }


def run(
    size: str,
    devices: dict[str, list[str]],
    settings: Settings,
    seed: int,
    work: Path,
    run_job: Callable[..., dict[str, Any]],
    env: dict[str, str],
    seconds: float = 6.0,
    concurrency: tuple[int, ...] = CONCURRENCY,
) -> dict[str, Any]:
    """Every twin and device, batching and not, at each concurrency: the rows of the serving table."""
    from jai.tokenizer import Tokenizer

    runner = TWINS["torch"] if "torch" in devices else TWINS["mlx"]
    ckpt = make_checkpoint(size, seed, work, run_job, runner)
    tok = Tokenizer.load(ckpt / "tokenizer.json")
    ids = tok.encode(" ".join(TEXT))[: settings.prompt_len]
    body = {"prompt": tok.decode(ids), "max_tokens": settings.new_tokens, "temperature": 0}
    out: dict[str, Any] = {
        "size": size,
        "prompt_tokens": len(tok.encode(body["prompt"])),
        "new_tokens": settings.new_tokens,
        "seconds_per_cell": seconds,
        "max_batch": MAX_BATCH,
        "cpus": os.cpu_count(),
        "blas_threads": env.get("OPENBLAS_NUM_THREADS"),
        "loadavg_start": os.getloadavg()[0],
        "rows": [],
    }
    server_env = dict(env)  # `jai bench --blas-threads` reaches the servers as it reaches the workers
    for fw, devs in devices.items():
        for device in devs:
            for batching in (True, False):
                mode = ["--max-concurrent", str(MAX_BATCH)] if batching else ["--no-batching"]
                args = ["--backend", fw, "--device", device, "--max-waiting", str(MAX_WAITING), *mode]
                log = work / f"serve-{fw}-{device}-{'batch' if batching else 'serial'}.log"
                print(
                    f"jai bench: serving {fw} {device} {'batched' if batching else 'one at a time'}",
                    flush=True,
                )
                server = Server(ckpt, args, log, server_env)
                try:
                    asyncio.run(load(server.url, body, 2, min(1.0, seconds)))  # warm-up
                    for c in concurrency:
                        row = asyncio.run(load(server.url, body, c, seconds))
                        out["rows"].append({"framework": fw, "device": device, "batching": batching, **row})
                finally:
                    server.stop()
    out["loadavg_end"] = os.getloadavg()[0]
    return out


def speedups(serve: dict[str, Any], concurrency: int = 8) -> dict[tuple[str, str], float]:
    """Batched tokens/s over one-at-a-time tokens/s at `concurrency`, per (twin, device)."""
    cells = {
        (r["framework"], r["device"], r["batching"]): r
        for r in serve["rows"]
        if r["concurrency"] == concurrency
    }
    return {
        (fw, dev): cells[(fw, dev, True)]["tokens_per_s"] / cells[(fw, dev, False)]["tokens_per_s"]
        for (fw, dev, batching) in cells
        if batching and (fw, dev, False) in cells and cells[(fw, dev, False)]["tokens_per_s"] > 0
    }


def render(serve: dict[str, Any] | None) -> str:
    if not serve:
        return ""
    ms = lambda s: "-" if s is None else f"{s * 1000:.0f}"  # noqa: E731
    lines = [
        "",
        "## Serving (`jai serve`, dynamic batching vs one request at a time)",
        "",
        f"Model size {serve['size']}, prompts of {serve['prompt_tokens']} tokens, {serve['new_tokens']} new "
        f"tokens per request (greedy, /v1/completions), {serve['seconds_per_cell']:.0f} s per cell; batching "
        f"decodes up to {serve['max_batch']} requests together. The load generator runs on the same "
        f"{serve['cpus']} CPUs as the server; 1-minute load average {serve['loadavg_start']:.1f} before, "
        f"{serve['loadavg_end']:.1f} after (near the CPU count or above, every figure is noisy).",
        "",
        "| twin | device | batching | clients | req/s | tokens/s | p50 ms | p99 ms | 429 | errors |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in serve["rows"]:
        lines.append(
            f"| {r['framework']} | {r['device']} | {'yes' if r['batching'] else 'no'} | {r['concurrency']} | "
            f"{r['requests_per_s']:.2f} | {r['tokens_per_s']:.1f} | {ms(r['p50_s'])} | {ms(r['p99_s'])} | "
            f"{r['refused']} | {r['errors']} |"
        )
    ups = speedups(serve)
    if ups:
        lines += ["", "Batching's tokens/s over one-at-a-time at 8 clients (issue 12's target: at least 3x):"]
        lines += [f"- {fw} {dev}: {x:.2f}x" for (fw, dev), x in ups.items()]
    return "\n".join(lines) + "\n"
