"""Fault suite, training: `jai train` killed with SIGKILL at random moments, its output going to a file
(a script, nohup, cron, CI: not a terminal), then `jai train --resume`d the same way, ends with files
byte-identical to a run never killed: model.safetensors and the optimizer file, header included.

Each run is a real `jai` process. The kill moments are drawn at random (the seed is in the failure
message): a random checkpoint step, then a random delay, so kills land mid-step, mid-evaluation and
mid-save alike.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jai.checkpoint import train_state
from jai.checkpoint.weights import CheckpointError
from tests.test_train import make_data

ROOT = Path(__file__).resolve().parents[1]
STEPS = 120
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--batch-size", "2"]
TINY += ["--device", "cpu", "--max-steps", str(STEPS), "--ckpt-interval", "3", "--eval-interval", "5"]
TINY += ["--eval-batches", "1", "--dropout", "0.1"]
KILLS = 3  # per twin; the seed below decides when
FILES = ("model.safetensors", f"{train_state.STATE_DIR}/{train_state.OPTIMIZER_FILE}")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("faults") / "data", n_train=4_000, n_val=500)


def jai_train(data: Path, out: Path, twin: str, *more: str, log: Path) -> subprocess.Popen:
    """`jai train`, stdout and stderr appended to `log`: never a terminal, as after a kill in a script."""
    argv = [
        sys.executable,
        "-m",
        "jai.cli",
        "train",
        "--backend",
        twin,
        "--data",
        str(data),
        "--out",
        str(out),
    ]
    env = dict(
        os.environ, OMP_NUM_THREADS="1"
    )  # deterministic kernels: resumed == uninterrupted, bit for bit
    with log.open("a") as sink:
        return subprocess.Popen([*argv, *TINY, *more], cwd=ROOT, stdout=sink, stderr=sink, env=env)


def checkpoint_step(out: Path) -> int:
    try:
        return train_state.read_state_json(out / "ckpt").step
    except (CheckpointError, OSError, ValueError):  # none yet, or being replaced right now
        return -1


def finish(proc: subprocess.Popen, log: Path) -> None:
    assert proc.wait(timeout=300) == 0, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text and "error:" not in text, text


@pytest.mark.parametrize("twin", ["mlx", "torch"])
def test_kill_9_anywhere_then_resume_gives_the_same_bytes(tmp_path, data, twin):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    full, out, log = tmp_path / "full", tmp_path / "killed", tmp_path / "killed.log"
    finish(jai_train(data, full, twin, log=tmp_path / "full.log"), tmp_path / "full.log")

    kills, targets = 0, sorted(rng.sample(range(1, STEPS - 10), KILLS))
    proc = jai_train(data, out, twin, log=log)
    for target in targets:  # after the checkpoint of a random step, at a random moment of what follows
        deadline = time.monotonic() + 120
        while checkpoint_step(out) < target and proc.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is not None:
            break
        proc.kill()
        assert proc.wait(timeout=30) == -signal.SIGKILL
        kills += 1
        proc = jai_train(data, out, twin, "--resume", log=log)
    finish(proc, log)

    assert kills >= 1, f"seed {seed}: every run ended before its kill"
    assert checkpoint_step(out) == STEPS
    for name in FILES:
        same = (full / "ckpt" / name).read_bytes() == (out / "ckpt" / name).read_bytes()
        assert same, f"seed {seed}, {kills} kills: {name} differs from the uninterrupted run's"


def test_a_resumed_progress_bar_logs_when_stderr_is_not_a_terminal(capsys):
    """A resumed run's bar starts at step > 0; not on a terminal it is `LogLines` (jai/progress.py)."""
    from jai.progress import progress_bar

    with progress_bar(total=10, initial=4, desc="jai_torch", unit="step") as bar:
        bar.update(6)
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("jai_torch:") and "4/10" in first and "\r" not in first
