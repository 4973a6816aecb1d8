"""Resuming: exact on each twin (in process and after a real `kill -9`), continuous across twins.

Exact means bit-identical weights, not merely close: on one backend and device, a resumed step runs the
same kernels on the same inputs as the uninterrupted one, because every input is restored exactly -
weights and both Adam moments (stored float32, losslessly), Adam's step count (bias correction), the
step (the learning rate), the sampler's generator state (the batch) and the dropout RNG (the mask) -
and the CPU kernels are deterministic at a fixed thread count. Any drift would mean something was
not restored, so the tests ask for equality (dropout is on, so the RNG is tested too).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from jai.checkpoint import train_state
from jai.checkpoint.run_lock import LOCK_FILE
from jai.checkpoint.weights import CheckpointError
from tests.test_train import (  # noqa: F401 - fixtures
    CFG,
    LOSS_TOL,
    QUIET,
    ROOT,
    TWINS,
    curves,
    data,
    init_ckpt,
    losses,
    max_diff,
    records,
    small,
    weights_of,
)

DROPOUT = CFG.replace(dropout=0.1)


def optimizer_file(out):
    return load_file(out / "ckpt" / "train_state" / "optimizer.safetensors")


@pytest.mark.parametrize("twin", TWINS)
def test_resume_is_exact(tmp_path, data, twin):  # noqa: F811
    train, cfg = TWINS[twin], small(max_steps=30, eval_interval=7, ckpt_interval=100)
    train(data, tmp_path / "full", DROPOUT, cfg, **QUIET)
    summary = train(data, tmp_path / "part", DROPOUT, cfg, stop_at=12, **QUIET)
    assert summary["stopped"] == "stop_at" and summary["step"] == 12
    summary = train(data, tmp_path / "part", None, None, resume=True, **QUIET)
    assert summary["start_step"] == 12 and summary["step"] == 30
    assert max_diff(weights_of(tmp_path / "full"), weights_of(tmp_path / "part")) == 0.0
    assert max_diff(optimizer_file(tmp_path / "full"), optimizer_file(tmp_path / "part")) == 0.0
    assert np.array_equal(losses(tmp_path / "full"), losses(tmp_path / "part"))
    full = train_state.read_state_json(tmp_path / "full" / "ckpt")
    part = train_state.read_state_json(tmp_path / "part" / "ckpt")
    assert (part.step, part.optimizer_step) == (full.step, full.optimizer_step) == (30, 30)
    assert part.tokens_seen == full.tokens_seen
    assert part.sampler == full.sampler and part.rng == full.rng
    assert [r["event"] for r in records(tmp_path / "part") if "event" in r] == ["start", "resume"]


RUN = """
import sys, time
import torch
torch.set_num_threads(1)
from jai.config import GPTConfig
from jai.train_config import TrainConfig
from jai.training.loop import train
data, out, resume, pause = sys.argv[1], sys.argv[2], sys.argv[3] == "resume", float(sys.argv[4])
cfg, train_cfg = (None, None) if resume else (GPTConfig(**{model}), TrainConfig(**{train}))
# a sleep in the log (called at every evaluation, here every step) slows the run enough to kill it midway
log = lambda _: time.sleep(pause)
train("{twin}", data, out, cfg, train_cfg, resume=resume, device="cpu", progress=False, log=log)
"""


def checkpoint_step(out) -> int:
    try:
        return train_state.read_state_json(out / "ckpt").step
    except (CheckpointError, OSError, ValueError):  # none yet, or being replaced right now
        return -1


@pytest.mark.parametrize("twin", TWINS)
def test_kill_9_then_resume_is_exact(tmp_path, data, twin):  # noqa: F811
    """A run killed with SIGKILL after a checkpoint, then resumed, ends bit-identical to one never killed.

    Every run here is a fresh process, like the killed one: in-process MLX may sit on another BLAS than
    a fresh process (jai_mlx/blas.py preloads one only if it comes before MLX), and two BLAS libraries
    round differently, which would hide what this test is about.
    """
    cfg = small(max_steps=40, ckpt_interval=5, eval_interval=1, eval_batches=1)
    code = RUN.format(twin=twin, model=dataclasses.asdict(DROPOUT), train=cfg.to_dict())

    def run(out, mode: str, pause: float = 0.0) -> subprocess.Popen:
        command = [sys.executable, "-c", code, str(data), str(out), mode, str(pause)]
        return subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)

    full = run(tmp_path / "full", "new")  # the uninterrupted reference, meanwhile
    out = tmp_path / "killed"
    proc = run(out, "new", pause=0.05)
    try:
        deadline = time.monotonic() + 120
        while checkpoint_step(out) < 10:
            assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    killed_at = checkpoint_step(out)
    assert 10 <= killed_at < 40
    assert max(r["step"] for r in records(out)) >= killed_at  # the log may run ahead; resuming drops that

    for p in (run(out, "resume"), full):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert train_state.read_state_json(out / "ckpt").step == 40
    assert [r["step"] for r in records(out) if "event" in r] == [0, killed_at]
    assert max_diff(weights_of(tmp_path / "full"), weights_of(out)) == 0.0
    assert max_diff(optimizer_file(tmp_path / "full"), optimizer_file(out)) == 0.0
    assert np.array_equal(losses(tmp_path / "full"), losses(out))  # every step logged once, as uninterrupted


@pytest.mark.parametrize(("src", "dst"), [("mlx", "torch"), ("torch", "mlx")])
def test_cross_twin_resume_continues_the_curve(tmp_path, data, init_ckpt, curves, src, dst):  # noqa: F811
    """Half a run in one twin, the rest in the other: the loss goes on as in the same-twin run.

    The reference is `curves[src]`, the same 50 steps uninterrupted in the source twin. After the hand-
    over the difference is the twins' float32 noise (see LOSS_TOL), so the same bound applies, to
    the first resumed step (no jump) and to every later one.
    """
    out = tmp_path / "run"
    TWINS[src](data, out, None, small(), init_from=init_ckpt, stop_at=25, **QUIET)
    summary = TWINS[dst](data, out, None, None, resume=True, **QUIET)
    assert summary["start_step"] == 25 and summary["step"] == 50
    ref, run = losses(curves[src]), losses(out)
    assert np.array_equal(run[:25], ref[:25])
    assert abs(run[25] - ref[25]) <= LOSS_TOL, f"jump at the hand-over: {run[25]} vs {ref[25]}"
    diff = np.abs(run[25:] - ref[25:])
    assert diff.max() <= LOSS_TOL, f"largest |loss difference| {diff.max():.3g} after the hand-over"
    state = train_state.read_state_json(out / "ckpt")
    assert state.writer == f"jai_{dst}" and state.optimizer_step == 50
    assert [r["backend"] for r in records(out) if "event" in r] == [f"jai_{src}", f"jai_{dst}"]


def test_save_interrupted_between_renames_is_recovered(tmp_path, data):  # noqa: F811
    """A kill between atomic_directory's two renames leaves no ckpt/, only .ckpt.old-*: resume uses it."""
    out, notes = tmp_path / "run", []
    TWINS["torch"](data, out, CFG, small(max_steps=10), stop_at=5, **QUIET)
    os.replace(out / "ckpt", out / ".ckpt.old-0badc0de")
    (out / ".ckpt.tmp-half").mkdir()
    (out / ".ckpt.tmp-half" / "model.safetensors").write_bytes(b"half written")
    summary = TWINS["torch"](data, out, None, None, resume=True, **(QUIET | {"log": notes.append}))
    assert summary["start_step"] == 5 and summary["step"] == 10
    assert any("restored the previous checkpoint from .ckpt.old-0badc0de" in n for n in notes)
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE, "ckpt", "metrics.jsonl"]  # no leftovers


def test_resume_refuses_a_different_model(tmp_path, data):  # noqa: F811
    out = tmp_path / "run"
    TWINS["mlx"](data, out, CFG, small(max_steps=4), stop_at=2, **QUIET)
    with pytest.raises(CheckpointError, match=r"n_embd 64 vs 32"):
        TWINS["torch"](data, out, CFG.replace(n_embd=32), None, resume=True, **QUIET)
    with pytest.raises(CheckpointError, match=r"already holds a run; pass --resume"):
        TWINS["torch"](data, out, CFG, small(max_steps=4), **QUIET)
    assert json.loads((out / "ckpt" / "config.json").read_text())["n_embd"] == 64
