"""Fault suite, file system: a real small file system that fills up, under every command that writes.

A tmpfs of a few MB is mounted for the module (this needs root, or the capability to mount: otherwise
the module is skipped, with the reason). Each test first writes once with room to spare, then fills the
file system to within a few KB and writes again: the command must exit 1 with one line naming the file
and "No space left on device", and leave the earlier output byte for byte as it was, with no temporary
left behind. An interrupted `jai prepare` (kill -9) must leave the earlier data folder whole as well.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from jai.data.prepare import BUNDLED_SAMPLE
from tests.serve_support import make_checkpoint
from tests.test_train import make_data

ROOT = Path(__file__).resolve().parents[1]
FULL = "No space left on device"
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--batch-size", "2"]
TINY += ["--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def fs(tmp_path_factory) -> Path:
    mount = tmp_path_factory.mktemp("fs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'mount failed'})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def room(fs: Path) -> Path:
    """A fresh folder on the small file system; its filler is removed afterwards."""
    folder = fs / uuid.uuid4().hex[:8]
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
    (fs / "filler").unlink(missing_ok=True)


def fill(fs: Path, leave: int = 16_000) -> None:
    st = os.statvfs(fs)
    with open(fs / "filler", "ab") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))


def jai(*argv: str | Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "jai.cli", *map(str, argv)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_full_disk(done: subprocess.CompletedProcess, command: str, named: Path) -> str:
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"jai {command}: error: {named}") and FULL in line, line
    return line


@pytest.mark.parametrize("twin", ["mlx", "torch"])
def test_a_training_save_on_a_full_disk(fs, room, tmp_path, twin):
    data = make_data(tmp_path / "data", n_train=3_000, n_val=500)
    out = room / "run"
    first = jai("train", "--backend", twin, "--data", data, "--out", out, *TINY, "--max-steps", "2")
    assert first.returncode == 0, first.stderr
    before = files(out / "ckpt")
    fill(fs)
    done = jai("train", "--backend", twin, "--out", out, "--resume", "--max-steps", "4", "--no-progress")
    line = assert_full_disk(done, "train", out / "ckpt")
    assert "could not write the checkpoint of step 4" in line and "is intact" in line
    assert files(out / "ckpt") == before
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".ckpt")) == []


@pytest.mark.parametrize("kind", ["to-nanogpt", "to-state-dict"])
def test_a_torch_file_on_a_full_disk(fs, room, tmp_path, kind):
    ckpt = make_checkpoint(tmp_path / "run")
    out = room / "model.pt"
    assert jai("convert", kind, ckpt, out).returncode == 0
    before = out.read_bytes()
    fill(fs)
    assert_full_disk(jai("convert", kind, ckpt, out, "--force"), "convert", out)
    assert out.read_bytes() == before
    assert [p.name for p in room.iterdir()] == ["model.pt"]


def test_a_gguf_file_on_a_full_disk(fs, room, tmp_path):
    pytest.importorskip("gguf")
    ckpt = make_checkpoint(tmp_path / "run")
    out = room / "jai.gguf"
    assert jai("export", "gguf", ckpt, out, "--no-modelfile").returncode == 0
    before = out.read_bytes()
    fill(fs)
    assert_full_disk(jai("export", "gguf", ckpt, out, "--no-modelfile", "--force"), "export", out)
    assert out.read_bytes() == before
    assert [p.name for p in room.iterdir()] == ["jai.gguf"]


def prepare_argv(out: Path, vocab: int) -> list[str | Path]:
    return ["prepare", BUNDLED_SAMPLE, "--out", out, "--vocab-size", str(vocab)]


def test_prepare_on_a_full_disk_keeps_the_old_data_folder(fs, room):
    out = room / "data"
    assert jai(*prepare_argv(out, 400)).returncode == 0
    before = files(out)
    fill(fs, leave=200_000)  # room for a new tokenizer.json, not for new token files
    line = assert_full_disk(jai(*prepare_argv(out, 500)), "prepare", out)
    assert "the data folder is as it was" in line
    assert files(out) == before
    assert [p.name for p in room.iterdir()] == ["data"]


def test_an_interrupted_prepare_keeps_the_old_data_folder(tmp_path):
    """kill -9 while the new folder is being written: the old one is whole, and still trains."""
    out = tmp_path / "data"
    assert jai(*prepare_argv(out, 400)).returncode == 0
    before = files(out)
    records = [r for r in json.loads(Path(BUNDLED_SAMPLE).read_text()) if isinstance(r, dict)]
    many = [dict(r, id=f"{r.get('id')}-{i}") for i in range(8) for r in records]  # ~a minute of work
    (tmp_path / "many.json").write_text(json.dumps(many, ensure_ascii=False))
    argv = [sys.executable, "-m", "jai.cli", "prepare", "many.json", "--out", "data", "--vocab-size", "500"]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not any(tmp_path.glob(".data.tmp-*/tokenizer.json")):  # the new tokenizer is written
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert files(out) == before
    train = jai(
        "train", "--backend", "torch", "--data", out, "--out", tmp_path / "run", *TINY, "--max-steps", "1"
    )
    assert train.returncode == 0, train.stderr


def test_prepare_refuses_a_folder_holding_other_files(tmp_path):
    out = tmp_path / "mixed"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    done = jai(*prepare_argv(out, 400))
    assert done.returncode == 2 and "'notes.txt', which `jai prepare` did not write" in done.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
