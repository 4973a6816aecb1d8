"""Every Python block in README.md and docs/*.md runs as written, and every `jai` command in their shell
blocks exists with the flags it shows.

The Python blocks run in a folder laid out as `jai run` leaves it (out/run/ckpt, out/posting.txt, and
out/q4 from `jai quantize`), a tiny model standing in for the trained one. A block that talks to
`http://127.0.0.1:8000` gets a real `jai serve out/run` there, inside a network namespace of its own so
the port is free whatever else runs on this machine (root or user namespaces needed: otherwise skipped,
with the reason). The shell blocks are only checked against --help: they train, benchmark and call
outside tools (torchrun, llama.cpp, Ollama) for minutes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jai import cli
from tests.serve_support import LINES, make_checkpoint
from tests.test_readme import help_text

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SERVER = "http://127.0.0.1:8000"

SERVED = """
import subprocess, sys, time, httpx
server = subprocess.Popen([sys.executable, "-m", "jai.cli", "serve", "out/run", "--port", "8000"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(600):
        try:
            if httpx.get("http://127.0.0.1:8000/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    sys.exit(subprocess.run([sys.executable, sys.argv[1]]).returncode)
finally:
    server.kill()
"""


def blocks(kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    """(where, code) of every fenced block of these kinds."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"^```(\w+)\n(.*?)^```", text, flags=re.S | re.M):
            if m.group(1) in kinds:
                line = text[: m.start()].count("\n") + 1
                found.append((f"{page.relative_to(ROOT)}:{line}", m.group(2)))
    return found


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A folder as `jai run` leaves it, with a tiny model."""
    home = tmp_path_factory.mktemp("docs")
    make_checkpoint(home / "out" / "run", block_size=256)  # the default context, as the docs assume
    # `jai run` saves a posting fitted to the context with room for its answer: one of four lines here
    (home / "out" / "posting.txt").write_text(LINES[1], encoding="utf-8")
    argv = ["quantize", "out/run/ckpt", "out/q4", "--bits", "4", "--group-size", "32"]
    done = subprocess.run([sys.executable, "-m", "jai.cli", *argv], cwd=home, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return home


def private_network() -> list[str] | None:
    """A command prefix that runs its command in a network namespace with only loopback up, or None."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return [*prefix, "sh", "-c", 'ip link set lo up 2>/dev/null || true; exec "$@"', "sh"]
    return None


PYTHON = blocks(("python",))


@pytest.mark.parametrize(("where", "code"), PYTHON, ids=[where for where, _ in PYTHON])
def test_each_python_block_runs_as_written(home, tmp_path, where, code):
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    command = [sys.executable, str(script)]
    if SERVER in code:
        prefix = private_network()
        if prefix is None:
            pytest.skip("no network namespace here for a server of its own on port 8000")
        (tmp_path / "served.py").write_text(SERVED, encoding="utf-8")
        command = [*prefix, sys.executable, str(tmp_path / "served.py"), str(script)]
    done = subprocess.run(command, cwd=home, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{where}:\n{done.stderr[-3000:]}"


def jai_lines(code: str) -> list[list[str]]:
    """The `jai ...` command lines of a shell block (comments dropped, continuations joined)."""
    lines = []
    for line in code.replace("\\\n", " ").splitlines():
        words = line.split("#")[0].split()
        if words and words[0] in ("jai", ".venv/bin/jai"):
            lines.append(words[1:])
    return lines


@pytest.mark.parametrize(
    "argv",
    [argv for _, code in blocks(("bash", "sh")) for argv in jai_lines(code) if argv and argv[0][:1] != "-"],
    ids=" ".join,
)
def test_each_shell_jai_command_and_flag_exists(argv):
    assert argv[0] in cli.COMMANDS, f"`jai {argv[0]}` does not exist"
    sub = argv[1:2] if len(argv) > 1 and not argv[1].startswith("-") else []
    text = help_text([argv[0], *sub])
    for flag in (a.split("=")[0] for a in argv[1:] if a.startswith("--")):
        assert re.search(rf"{re.escape(flag)}\b", text), (
            f"`jai {' '.join(argv)}`: {flag} is not in its --help"
        )
