"""One error path: each kind of mistake a user can make, run through the `jai` dispatcher in two commands,
reads the same way (`jai <command>: error: <one line>`, no traceback) and exits with the same code.

Exit codes (jai/errors.py): 2 for bad input (a path named wrongly included), 1 for a run that failed on
good input (the file system refused a write), 130 for Ctrl-C. Everything here runs the real commands on
real files; a full disk is the one thing injected (an `ENOSPC` from fsync, where a real full disk reports
it first).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jai import cli
from jai.atomic import name_the_file
from jai.data.prepare import BUNDLED_SAMPLE
from tests.test_sample_cli import make_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY_TRAIN = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--batch-size", "2"]
TINY_TRAIN += ["--backend", "torch", "--device", "cpu", "--no-progress"]


def jai(capsys, *argv: str) -> tuple[int, str]:
    """Run `jai argv...` in this process; its exit code and its last stderr line."""
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, (err.strip().splitlines() or [""])[-1]


def message(line: str, command: str) -> str:
    """The message of a `jai <command>: error: <message>` line."""
    prefix = f"jai {command}: error: "
    assert line.startswith(prefix), line
    return line[len(prefix) :]


def assert_same(capsys, code: int, first: list[str], second: list[str], needle: str) -> tuple[str, str]:
    """Run two commands; both exit `code` with one error line holding `needle`. Returns both messages."""
    got = []
    for argv in (first, second):
        exit_code, line = jai(capsys, *argv)
        assert exit_code == code, (argv, line)
        got.append(message(line, argv[0]))
        assert needle in got[-1], (argv, line)
    return got[0], got[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("errors") / "run"
    make_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("errors") / "data"
    assert cli.main(["prepare", str(BUNDLED_SAMPLE), "--out", str(path), "--vocab-size", "400"]) == 0
    return path


# --- bad input: exit 2 ------------------------------------------------------------------------------------


def test_a_missing_checkpoint(capsys, tmp_path):
    nope = tmp_path / "nope"
    a, b = assert_same(capsys, 2, ["sample", nope, "--prompt", "hi"], ["serve", nope], "no such checkpoint")
    assert a == b and str(nope) in a


def test_a_missing_input_file(capsys, tmp_path):
    nope = tmp_path / "nope.json"
    prepare = ["prepare", nope, "--out", tmp_path / "out"]
    run = ["run", "--postings", nope, "--out", tmp_path / "out", "--backend", "torch"]
    a, b = assert_same(capsys, 2, prepare, run, str(nope))
    assert a == b


def test_a_value_out_of_range(capsys, run_dir, data_dir, tmp_path):
    train = ["train", "--data", data_dir, "--out", tmp_path / "r", "--lr", "-1", *TINY_TRAIN]
    a, b = assert_same(capsys, 2, train, ["sample", run_dir, "--prompt", "hi", "--top-k", "0"], "")
    assert "lr" in a and "--top-k" in b
    a, b = assert_same(
        capsys,
        2,
        ["sample", run_dir, "--prompt", "hi", "--max-new-tokens", "0"],
        ["serve", run_dir, "--max-new-tokens", "0"],
        "--max-new-tokens",
    )


@pytest.mark.skipif(sys.platform == "darwin", reason="a Mac has MPS")
def test_a_device_this_machine_lacks(capsys, run_dir, data_dir, tmp_path):
    train = ["train", "--data", data_dir, "--out", tmp_path / "r", *TINY_TRAIN, "--device", "mps"]
    sample = ["sample", run_dir, "--prompt", "hi", "--backend", "torch", "--device", "mps"]
    a, b = assert_same(capsys, 2, train, sample, "mps")
    assert a == b


@pytest.mark.parametrize("framework, backend, extra", [("torch", "torch", "torch"), ("mlx", "mlx", "mlx")])
def test_a_missing_framework_names_its_extra(run_dir, data_dir, tmp_path, framework, backend, extra):
    """The framework made unimportable, as on a machine that installed only the other twin."""
    lines = []
    for argv in (
        ["train", "--data", data_dir, "--out", tmp_path / "r", "--backend", backend],
        ["sample", run_dir, "--prompt", "hi", "--backend", backend],
    ):
        code = f"import sys; sys.modules[{framework!r}] = None\nfrom jai import cli\n"
        code += f"sys.exit(cli.main({[str(a) for a in argv]!r}))"
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        lines.append(message(result.stderr.strip().splitlines()[-1], argv[0]))
        assert f"pip install -e '.[{extra}]'" in lines[-1]
    assert lines[0] == lines[1]


# --- the file system refuses a write: exit 1, the path named, what was kept said ---------------------------


def test_out_names_an_existing_file(capsys, data_dir, tmp_path):
    """A file where the output folder should go is bad input: exit 2, the file named, and left alone."""
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    prepare = ["prepare", BUNDLED_SAMPLE, "--out", afile, "--vocab-size", "400"]
    train = ["train", "--data", data_dir, "--out", afile, *TINY_TRAIN, "--max-steps", "1"]
    a, b = assert_same(capsys, 2, prepare, train, str(afile))
    assert "is a file" in b and "a file where a folder is needed" in a
    assert afile.read_text() == "mine\n"


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_write_refused_keeps_the_previous_output(capsys, monkeypatch, run_dir, tmp_path, code):
    """Both commands first succeed, then run again into the same place while every fsync fails."""
    prepared, converted = tmp_path / "data", tmp_path / "converted"
    prepare = ["prepare", BUNDLED_SAMPLE, "--out", prepared, "--vocab-size", "400"]
    convert = ["convert", "from-hf", run_dir / "ckpt", converted, "--force"]
    assert cli.main([str(a) for a in prepare]) == 0 and cli.main([str(a) for a in convert]) == 0
    before = {prepared: files(prepared), converted: files(converted)}
    capsys.readouterr()

    def refuse(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", refuse)
    a, b = assert_same(capsys, 1, prepare, convert, os.strerror(code))
    monkeypatch.undo()
    assert str(prepared) in a and str(converted) in b  # the file or folder being written is named
    assert "the input postings are untouched" in a and "the source is untouched" in b
    for folder, was in before.items():
        assert files(folder) == was  # every file as it was, and no temporary file left behind
        assert not [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]


def test_a_safetensors_write_failure_is_a_file_system_error(tmp_path):
    """safetensors reports a failed write as SafetensorError, not OSError: it is read as the OSError."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    with pytest.raises(Exception) as raised:
        save_file({"w": torch.zeros(2)}, str(tmp_path / "missing" / "model.safetensors"))
    assert type(raised.value).__name__ == "SafetensorError"
    named = name_the_file(tmp_path / "ckpt", raised.value)
    assert (
        isinstance(named, OSError)
        and named.errno == errno.ENOENT
        and named.filename == str(tmp_path / "ckpt")
    )
    assert cli.file_system_error(raised.value)[:2] == (errno.ENOENT, os.strerror(errno.ENOENT))


# --- Ctrl-C: exit 130 and a line saying so -----------------------------------------------------------------


def ctrl_c_delivered() -> None:
    """In the child before Python starts: SIGINT back to its default. A shell starts a background job
    (`make test &`, nohup) with SIGINT ignored, children inherit that, and a Python started so never
    installs its KeyboardInterrupt handler: the Ctrl-C these tests send would be dropped."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Start `jai argv...`, send SIGINT once it has printed its first line, return (exit code, output)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jai.cli", *map(str, argv)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ctrl_c_delivered,
    )
    first = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=300)
    return proc.returncode, first + rest


def test_ctrl_c(tmp_path, data_dir):
    records = [r for r in json.loads(Path(BUNDLED_SAMPLE).read_text()) if isinstance(r, dict)]
    many = [dict(r, id=f"{r.get('id')}-{i}") for i in range(8) for r in records]  # ~a minute of work
    (tmp_path / "many.json").write_text(json.dumps(many, ensure_ascii=False))
    code, out = interrupt(["prepare", "many.json", "--out", "data", "--vocab-size", "400"], tmp_path)
    assert code == 130 and "Traceback" not in out, out
    assert out.strip().splitlines()[-1] == "jai prepare: interrupted"
    train = ["train", "--data", data_dir, "--out", "run", *TINY_TRAIN, "--max-steps", "1000000"]
    code, out = interrupt(train, tmp_path)
    assert code == 130 and "Traceback" not in out, out
    assert out.strip().splitlines()[-1].startswith("jai train: interrupted")
