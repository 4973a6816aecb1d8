"""The README's commands exist as written: every `jai <command>` and every flag it shows in a ```bash block
is in that command's --help, and every `make` target it names is in the Makefile. This catches drift
cheaply; running the README from a fresh clone is a manual check (it takes minutes)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from jai import cli

ROOT = Path(__file__).resolve().parents[1]


def bash_lines(markdown: str) -> list[str]:
    """The command lines of the ```bash blocks, comments dropped, continuation lines joined."""
    lines = []
    for block in re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            line = shlex.split(line, comments=True)
            if line:
                lines.append(line)
    return lines


def jai_commands(markdown: str) -> list[list[str]]:
    """Each `jai ...` (or `.venv/bin/jai ...`) invocation, as its argument list."""
    return [words[1:] for words in bash_lines(markdown) if words[0] in ("jai", ".venv/bin/jai")]


def help_text(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = cli.main([*argv, "--help"])
        except SystemExit as e:  # argparse's --help exits; `jai convert` returns argparse's code instead
            code = e.code
    assert code in (0, None), argv
    return out.getvalue()


README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_shows_the_commands_a_newcomer_needs():
    shown = {argv[0] for argv in jai_commands(README) if argv}
    assert {"run", "prepare", "train", "sample", "serve", "convert", "bench"} <= shown
    assert "source .venv/bin/activate" in README and "download.pytorch.org/whl/cpu" in README


@pytest.mark.parametrize(
    "argv", [a for a in jai_commands(README) if a and not a[0].startswith("-")], ids=" ".join
)
def test_each_command_and_flag_exists(argv):
    command = argv[0]
    assert command in cli.COMMANDS, f"README names `jai {command}`, which does not exist"
    # `jai convert from-hf ...`, `jai export gguf ...`: a subcommand has its own help, with its own flags (a
    # positional argument instead changes nothing: --help wins)
    sub = argv[1:2] if len(argv) > 1 and not argv[1].startswith("-") else []
    text = help_text([command, *sub])
    for flag in (a.split("=")[0] for a in argv[1:] if a.startswith("--")):
        assert re.search(rf"{re.escape(flag)}\b", text), (
            f"`jai {' '.join(argv)}`: {flag} is not in its --help"
        )


def test_each_make_target_exists():
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M))
    named = {words[1] for words in bash_lines(README) if words[0] == "make" and len(words) > 1}
    assert named and named <= targets, named - targets


def test_suggested_commands_call_the_jai_that_is_running(monkeypatch, tmp_path):
    """`make run` runs .venv/bin/jai, which is not on PATH: the `jai sample` line it ends with must say
    .venv/bin/jai to work as printed; once the venv is active, plain `jai`."""
    script = tmp_path / ".venv" / "bin" / "jai"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [".venv/bin/jai", "run"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert cli.invocation() == ".venv/bin/jai"
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")  # source .venv/bin/activate
    assert cli.invocation() == "jai"


def test_the_sample_command_jai_run_ends_with_works_as_printed(monkeypatch, tmp_path):
    """`jai run`'s last line, built from a prepared data dir, runs in a shell exactly as printed."""
    from jai.cli.run import try_it
    from jai.data.prepare import BUNDLED_SAMPLE
    from jai.evaluation.scoring import heldout_samples
    from jai.tokenizer import Tokenizer
    from tests.test_sample_cli import make_checkpoint

    data = tmp_path / "out" / "data"
    assert cli.main(["prepare", str(BUNDLED_SAMPLE), "--out", str(data), "--vocab-size", "400"]) == 0
    make_checkpoint(tmp_path / "out" / "run")  # a tiny model stands in for the trained one
    meta = json.loads((data / "meta.json").read_text())
    shown = heldout_samples(meta, Tokenizer.load(data / "tokenizer.json"))[0]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [str(Path(sys.executable).with_name("jai")), "run"])
    line = try_it(vars(shown), Path("out/data"), Path("out/run/ckpt"), Path("out"))
    assert " sample out/run/ckpt --question " in line and line.endswith("--doc-file out/posting.txt")
    result = subprocess.run(
        f"{line} --max-new-tokens 4", shell=True, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and result.stdout.strip(), result.stderr
