"""Fault suite, messages: what a failed or stopped run says points at something that exists.

Before the first checkpoint there is nothing to `--resume`: divergence and Ctrl-C say so instead of
suggesting it. A run refused before it wrote anything leaves no `--out` folder behind (it held only the
run's `.lock`).

Not covered, and not fixed: a Ctrl-C landing within the first milliseconds of an MLX run (its first
compiled step) hangs the process in `mx.async_eval` in about 2 of 10 tries on Linux CPU (the main thread
spins; the Python handler has run). Later Ctrl-Cs stop the run as they should (8 of 8 at 0.3 s).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jai import cli
from jai.training.loop import TrainingDiverged
from tests.serve_support import make_checkpoint
from tests.test_cli_errors import ctrl_c_delivered
from tests.test_train import CFG, QUIET, TWINS, data, small  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "8", "--batch-size", "2"]


@pytest.mark.parametrize("twin", TWINS)
def test_divergence_before_the_first_save_does_not_suggest_resume(tmp_path, data, twin):  # noqa: F811
    absurd = small(max_steps=10, ckpt_interval=4, eval_interval=100, lr=1e6, min_lr=1e6, warmup_steps=0)
    with pytest.raises(TrainingDiverged) as raised:
        TWINS[twin](data, tmp_path / "run", CFG, absurd, **QUIET)
    message = str(raised.value)
    assert "no checkpoint had been written yet; start again with a lower --lr" in message, message
    assert "resume" not in message


def steps_logged(out: Path) -> int:
    path = out / "metrics.jsonl"
    return path.read_text().count('"loss"') if path.is_file() else 0


@pytest.mark.parametrize("twin", TWINS)
def test_ctrl_c_before_the_first_save_does_not_suggest_resume(tmp_path, data, twin):  # noqa: F811
    out = tmp_path / "run"
    argv = [
        "train",
        "--backend",
        twin,
        "--data",
        data,
        "--out",
        out,
        "--device",
        "cpu",
        "--no-progress",
        *TINY,
    ]
    argv += ["--max-steps", "1000000", "--ckpt-interval", "1000000", "--eval-interval", "1000000"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "jai.cli", *map(str, argv)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_delivered,
    )
    deadline = time.monotonic() + 120
    # a few steps in: a Ctrl-C inside MLX's first compiled step can hang MLX (see the module docstring)
    while steps_logged(out) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "jai train: interrupted; no checkpoint was saved"
    assert not (out / "ckpt").exists()


def test_a_rejected_init_from_leaves_no_out_folder(tmp_path, data, capsys):  # noqa: F811
    other = make_checkpoint(tmp_path / "other")  # a model of another vocabulary than the data's
    out = tmp_path / "new" / "run"
    argv = ["train", "--data", str(data), "--out", str(out), "--init-from", str(other), *TINY]
    assert cli.main([*argv, "--backend", "torch", "--device", "cpu", "--no-progress"]) == 2
    assert "vocab" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # neither the run folder nor the parent it had to make


def test_tqdm_has_its_lock_before_any_run_starts():
    """Made lazily, by a run's first tqdm.write, a Ctrl-C inside that import left tqdm without a lock."""
    code = "import jai.progress, tqdm; print(hasattr(tqdm.tqdm, '_lock'))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
