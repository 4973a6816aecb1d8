"""`pip install .` as a user gets it: a wheel built from this tree, installed into a fresh venv, offline.

The wheel must not claim generic top-level names (data/, convert/ and benchmarks/ install as jai.data,
jai.convert and jai.benchmarks), must ship every package and the bundled postings, and every `jai`
command must start from it. The fresh venv borrows the third-party packages of the venv running the
tests (a path in a .pth file, which does not load that venv's editable JAI), so nothing is downloaded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = (".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", "out", "runs", "bench-results")
PACKAGES = {"jai": "jai", "jai_mlx": "jai_mlx", "jai_torch": "jai_torch", "data": "jai/data"}
PACKAGES |= {"convert": "jai/convert", "benchmarks": "jai/benchmarks"}  # folder here -> path in the wheel


def run(*cmd: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of this tree (a build writes build/ and *.egg-info beside its sources)."""
    tmp = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, tmp / "src", ignore=shutil.ignore_patterns(*NOT_SOURCE, ".*_cache"))
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    built = run(*pip, "-w", tmp / "dist", tmp / "src", cwd=tmp)
    (tmp / "build.log").write_text(built.stdout + built.stderr)
    (found,) = (tmp / "dist").glob("jai-*.whl")
    return found


def test_the_build_prints_no_warning(wheel):
    """pip shows the build backend's warnings (setuptools' boxed ones) to everyone who installs JAI."""
    log = (wheel.parent.parent / "build.log").read_text()
    assert "warning" not in log.lower(), log


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A fresh venv holding the wheel, and the test venv's third-party packages on its path."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv.parent)
    python = venv / "bin" / "python"
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        wheel,
        cwd=venv,
    )
    purelib = Path(
        run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=venv
        ).stdout.strip()
    )
    (purelib / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_the_wheel_holds_every_package_and_no_generic_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.startswith("jai-")} == {"jai", "jai_mlx", "jai_torch"}
    for folder, installed in PACKAGES.items():  # every module and subpackage of the source, none left out
        for py in (ROOT / folder).rglob("*.py"):
            if (py.parent / "__init__.py").exists():
                assert f"{installed}/{py.relative_to(ROOT / folder).as_posix()}" in names, py
    assert "jai/data/jobs/postings.json" in names  # what `jai prepare` and `jai run` use by default
    assert "jai/server/page.html" in names  # the web page `jai serve` shows at /
    assert "jai/benchmarks/report_template.md" in names  # the words of `jai bench`'s report


def test_every_command_starts_from_the_wheel(venv, tmp_path):
    jai = venv / "bin" / "jai"
    for command in ("prepare", "run", "train", "sample", "convert", "bench"):
        assert f"usage: jai {command}" in run(jai, command, "--help", cwd=tmp_path).stdout
    where = "import jai, jai.data; print(jai.__file__); print(jai.data.__file__)"
    for line in run(venv / "bin" / "python", "-c", where, cwd=tmp_path).stdout.split():
        assert Path(line).is_relative_to(venv), line  # the wheel's JAI, not this checkout's


def test_generic_names_are_not_importable(venv, tmp_path):
    code = "import importlib.util as u\nfor n in ('data', 'convert', 'benchmarks'):\n"
    code += "    s = u.find_spec(n)\n    print(n, s and s.origin)"
    for line in run(venv / "bin" / "python", "-c", code, cwd=tmp_path).stdout.splitlines():
        origin = line.split(" ", 1)[1]
        if origin != "None":  # something else of that name may exist; it must not be JAI's
            assert not Path(origin).is_relative_to(venv) and not Path(origin).is_relative_to(ROOT), line


def test_prepare_runs_on_the_bundled_postings_from_the_wheel(venv, tmp_path):
    """The postings ship as package data: `jai prepare` with no input finds them inside site-packages."""
    result = run(
        venv / "bin" / "jai", "prepare", "--out", tmp_path / "data", "--vocab-size", "300", cwd=tmp_path
    )
    assert (tmp_path / "data" / "train.bin").stat().st_size > 0, result.stdout
