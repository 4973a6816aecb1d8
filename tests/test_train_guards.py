"""Nothing breaks a run: bad token ids and tokenizers refused before step 1, one run per folder, divergence
never saved, a full disk reported in one line with the previous checkpoint intact, an interrupted save
recovered by readers, and --max-seconds bounding the whole call. Both twins, through the real loop."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jai import cli
from jai.checkpoint import train_state
from jai.checkpoint.run_lock import LOCK_FILE, is_locked
from jai.errors import JaiError
from jai.training.loop import MAX_SANE_WEIGHT, TrainingDiverged
from jai_torch import checkpoint as torch_ckpt
from tests.test_sample_cli import make_checkpoint
from tests.test_train import CFG, QUIET, ROOT, TWINS, data, make_data, small, weights_of  # noqa: F401

SHAPE = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "8"]
STEPS = ["--batch-size", "2", "--eval-interval", "2", "--eval-batches", "1", "--ckpt-interval", "2"]


def jai_train(backend: str, data_dir: Path | None, out: Path, *extra: str) -> int:
    given = ["--data", str(data_dir)] if data_dir else []
    return cli.main(["train", "--backend", backend, *given, "--out", str(out), "--device", "cpu",
                     "--no-progress", *extra])  # fmt: skip


@pytest.mark.parametrize("twin", TWINS)
def test_token_ids_outside_the_vocabulary_are_refused_before_the_first_step(tmp_path, twin, capsys):
    bad = make_data(tmp_path / "data", n_train=3_000, n_val=500)
    tokens = np.fromfile(bad / "train.bin", dtype=np.uint16)
    tokens[1234] = 97  # one past the vocabulary: an embedding lookup out of bounds
    tokens.tofile(bad / "train.bin")
    assert jai_train(twin, bad, tmp_path / "run", *SHAPE, *STEPS, "--max-steps", "2") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "train.bin" in err and "position 1234" in err and "vocab_size 97" in err
    assert not (tmp_path / "run" / "ckpt").exists()


def test_a_tokenizer_other_than_the_data_names_is_refused(tmp_path, capsys):
    data_dir = make_data(tmp_path / "data", n_train=3_000, n_val=500)
    meta = json.loads((data_dir / "meta.json").read_text())
    meta["tokenizer_sha256"] = "0" * 64
    (data_dir / "meta.json").write_text(json.dumps(meta))
    (data_dir / "tokenizer.json").write_text("{not the tokenizer that made these ids}")
    assert jai_train("torch", data_dir, tmp_path / "run", *SHAPE, *STEPS, "--max-steps", "2") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tokenizer.json" in err and "meta.json" in err
    assert not (tmp_path / "run" / "ckpt").exists()


@pytest.mark.parametrize("twin", TWINS)
def test_resume_finds_its_own_data(tmp_path, data, twin, monkeypatch):  # noqa: F811
    out = tmp_path / "run"
    assert jai_train(twin, data, out, *SHAPE, *STEPS, "--max-steps", "4", "--max-seconds", "0") == 0
    monkeypatch.chdir(tmp_path)  # the default data folder, out/data, is not here
    assert jai_train(twin, None, out, "--resume") == 0
    state = train_state.read_state_json(out / "ckpt")
    assert state.step == 4 and state.data_dir == str(data)


SLOW_RUN = """
import sys, time
import torch
torch.set_num_threads(1)
from jai.config import GPTConfig
from jai.train_config import TrainConfig
from jai.training.loop import train
cfg = GPTConfig(vocab_size=97, block_size=8, n_layer=1, n_head=2, n_embd=32)
steps = TrainConfig(batch_size=2, max_steps=12, eval_interval=1, eval_batches=1, ckpt_interval=3)
log = lambda _: time.sleep(0.3)
train("torch", sys.argv[1], sys.argv[2], cfg, steps, device="cpu", progress=False, log=log)
"""


def test_a_second_run_on_a_folder_in_use_is_refused_and_the_first_is_unharmed(tmp_path, data, capsys):  # noqa: F811
    out = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-c", SLOW_RUN, str(data), str(out)], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not (is_locked(out) and (out / "ckpt").exists()) and time.monotonic() < deadline:
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.1)
        # both a new run and a resume are refused while the first holds the folder
        for extra in ([*SHAPE, *STEPS, "--max-steps", "2"], ["--resume"]):
            assert jai_train("torch", data, out, *extra) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"in use by process {first.pid}" in err
        assert first.wait(timeout=180) == 0, first.stderr.read()
    finally:
        first.kill()
    assert train_state.read_state_json(out / "ckpt").step == 12
    assert not [p for p in out.iterdir() if p.name.startswith(".ckpt.")]  # no leftovers
    assert (out / LOCK_FILE).exists() and not is_locked(out)  # released on exit


@pytest.mark.parametrize("twin", TWINS)
def test_divergence_is_never_saved_and_the_kept_checkpoint_trains_on(tmp_path, data, twin):  # noqa: F811
    train, out = TWINS[twin], tmp_path / "run"
    train(data, out, CFG, small(max_steps=4, ckpt_interval=4), **QUIET)
    good = weights_of(out)
    # an absurd learning rate throws the weights far out in one update, while the loss still reads finite
    with pytest.raises(TrainingDiverged, match=r"largest weight .* not saved .* \(step 4\), is kept"):
        train(data, out, None, small(max_steps=10, ckpt_interval=1, lr=1e6, min_lr=1e6), resume=True, **QUIET)
    kept = weights_of(out)
    assert train_state.read_state_json(out / "ckpt").step == 4
    assert all(np.array_equal(kept[k], good[k]) for k in good)
    assert max(float(np.abs(w).max()) for w in kept.values()) < MAX_SANE_WEIGHT
    torch_ckpt.load_model(out / "ckpt")  # an ordinary, loadable model
    summary = train(data, out, None, small(max_steps=10), resume=True, **QUIET)
    assert summary["step"] == 10 and np.isfinite(summary["loss"]) and np.isfinite(summary["val_loss"])


def test_a_full_disk_is_one_line_and_the_previous_checkpoint_survives(tmp_path, data, capsys, monkeypatch):  # noqa: F811
    out = tmp_path / "run"
    assert jai_train("torch", data, out, *SHAPE, *STEPS, "--max-steps", "2") == 0
    before = weights_of(out)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(train_state, "save", disk_full)  # the optimizer file, mid-checkpoint
    assert jai_train("torch", None, out, "--resume", "--max-steps", "4") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "No space left on device" in err and "previous checkpoint" in err and "intact" in err
    assert train_state.read_state_json(out / "ckpt").step == 2
    assert all(np.array_equal(weights_of(out)[k], before[k]) for k in before)
    assert not [p for p in out.iterdir() if p.name.startswith(".ckpt.")]


def test_out_naming_a_file_is_one_line(tmp_path, data, capsys):  # noqa: F811
    (tmp_path / "taken").write_text("precious")
    code = jai_train("torch", data, tmp_path / "taken", *SHAPE, *STEPS, "--max-steps", "2")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err and "taken" in err
    assert "is a file" in err
    assert (tmp_path / "taken").read_text() == "precious"


def test_jai_sample_recovers_a_save_interrupted_between_its_renames(tmp_path, capsys):
    run = tmp_path / "run"
    make_checkpoint(run)
    os.replace(run / "ckpt", run / ".ckpt.old-0badf00d")  # what kill -9 between the renames leaves
    code = cli.main(["sample", str(run), "--backend", "torch", "--prompt", "We are hiring",
                     "--temperature", "0", "--max-new-tokens", "3", "--no-stream"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "restored the previous checkpoint" in captured.err
    assert (run / "ckpt" / "config.json").exists() and not (run / ".ckpt.old-0badf00d").exists()


def test_jai_convert_recovers_a_save_interrupted_between_its_renames(tmp_path, capsys):
    run = tmp_path / "run"
    make_checkpoint(run)
    os.replace(run / "ckpt", run / ".ckpt.old-0badf00d")
    assert cli.main(["convert", "to-nanogpt", str(run / "ckpt"), str(tmp_path / "ckpt.pt")]) == 0
    assert "restored the previous checkpoint" in capsys.readouterr().err
    assert (tmp_path / "ckpt.pt").is_file() and (run / "ckpt" / "config.json").exists()


@pytest.mark.parametrize("twin", TWINS)
def test_every_checkpoint_file_gets_the_usual_mode(tmp_path, data, twin):  # noqa: F811
    """safetensors writes owner-only files; a checkpoint's files are readable like its config.json."""
    out = tmp_path / "run"
    TWINS[twin](data, out, CFG, small(max_steps=2), **QUIET)
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.relative_to(out): p.stat().st_mode & 0o777 for p in (out / "ckpt").rglob("*") if p.is_file()}
    assert modes and set(modes.values()) == {0o666 & ~umask}, modes


def test_readers_leave_a_live_runs_files_alone(tmp_path):
    from jai.checkpoint.recovery import recover_checkpoint
    from jai.checkpoint.run_lock import RunLock

    run = tmp_path / "run"
    make_checkpoint(run)
    in_progress = run / ".ckpt.tmp-live1234"
    shutil.copytree(run / "ckpt", in_progress)
    with RunLock(run):  # in this process, but on its own descriptor: a reader sees a live run
        assert recover_checkpoint(run / "ckpt") is None
        assert in_progress.exists()
    recover_checkpoint(run / "ckpt")  # nobody holds the folder now: the leftover goes
    assert not in_progress.exists()


@pytest.mark.parametrize("twin", TWINS)
def test_max_seconds_bounds_the_whole_call_evaluation_included(tmp_path, data, twin):  # noqa: F811
    budget, slack = 6.0, 4.0  # slack: one step, one evaluation and one save past the estimate, at most
    started = time.perf_counter()
    cfg = small(max_steps=1_000_000, eval_interval=50, eval_batches=200, ckpt_interval=100)
    summary = TWINS[twin](data, tmp_path / "run", CFG, cfg, max_seconds=budget, **QUIET)
    elapsed = time.perf_counter() - started
    assert summary["stopped"] == "max_seconds" and summary["val_loss"] is not None
    assert elapsed <= budget + slack, f"{elapsed:.1f}s for --max-seconds {budget}"
    assert train_state.read_state_json(tmp_path / "run" / "ckpt").step == summary["step"]


def test_every_guard_error_is_a_jai_error():
    from jai.checkpoint.run_lock import RunLocked
    from jai.checkpoint.train_state import CheckpointWriteError

    assert all(issubclass(e, JaiError) for e in (RunLocked, CheckpointWriteError, TrainingDiverged))
