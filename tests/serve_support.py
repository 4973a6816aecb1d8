"""What the serving tests share: a tiny real checkpoint, and a real `jai serve` in a subprocess.

The server runs in its own process (as a user runs it), on a free loopback port it picks itself
(`--port 0`; the port is read from uvicorn's start-up line), with its log in a file so a busy server
never blocks on a full pipe.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import torch

from jai.config import GPTConfig
from jai.tokenizer import Tokenizer
from jai_torch import checkpoint as torch_ckpt
from jai_torch.model import GPT

LINES = [
    "백엔드 개발자를 모집합니다. 자격 요건: Python 3년 이상.",
    "We are hiring a backend engineer in Seoul. Salary: negotiable.",
    "데이터 엔지니어 채용, 근무지: 서울 강남구, 연봉 협의.",
    "Requirements: SQL, Spark, and a love of clean pipelines.",
] * 3
POSTING = "\n".join(LINES)
LONG_TOKENS = 100_000  # a generation that would run for minutes: only a cancel ends it early


def make_checkpoint(run_dir: Path, block_size: int = 64) -> Path:
    """A BPE tokenizer and a random GPT of its vocabulary, saved as `<run_dir>/ckpt` as `jai train` does."""
    tok = Tokenizer.train(LINES, vocab_size=320, min_frequency=1, show_progress=False)
    run_dir.mkdir(parents=True, exist_ok=True)
    tok.save(run_dir / "tokenizer.json")
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=block_size, n_layer=1, n_head=2, n_embd=32)
    model = GPT(cfg, seed=0)
    # GPT-2's init makes a random model repeat one token; unit-scale weights make greedy text wander.
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
    torch_ckpt.save_model(model, run_dir / "ckpt", tokenizer=run_dir / "tokenizer.json")
    return run_dir / "ckpt"


class ServerProcess:
    """`jai serve CKPT ARGS --port 0` in a subprocess; `.url` once it answers /health."""

    def __init__(self, ckpt: Path, *args: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jai.cli", "serve", str(ckpt), "--port", "0", *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        )
        self.url = self._wait_for_port(timeout=120)

    def _wait_for_port(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(rb"running on (http://127\.0\.0\.1:\d+)", self.log_path.read_bytes())
            if found:
                return found.group(1).decode()
            if self.proc.poll() is not None:
                raise RuntimeError(f"jai serve exited {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"jai serve did not start within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


def wait_until(check, timeout: float, every: float = 0.02):
    """Poll `check()` until it returns something truthy; that value, or the last one after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=5).json()
