"""The import graph is one-way: shared code never pulls in a framework, and a missing one is explained."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_shared_code_imports_neither_framework():
    shared = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for pkg in ("jai", "data")
        for p in (ROOT / pkg).rglob("*.py")
        if p.stem not in ("__init__", "__main__")
    )
    assert "jai.config" in shared and "jai.checkpoint.weights" in shared
    code = f"import importlib, sys\nfor m in {shared!r}: importlib.import_module(m)\n" + (
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('mlx', 'torch'))\nprint(bad)"
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_stages_reach_a_twin_only_through_the_one_door():
    """Inside jai/ and data/, a twin is imported only by `jai.devices.twin_module` (at run time, by name),
    and nothing but the `jai` dispatcher imports modules by name: a stage that imported a twin itself
    would hide a framework dependency from the import contracts (pyproject.toml), which see static
    imports only. Function-level imports count too."""
    allowed = {ROOT / "jai" / "devices.py", ROOT / "jai" / "cli" / "__init__.py"}
    found = []
    for path in sorted([*(ROOT / "jai").rglob("*.py"), *(ROOT / "data").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Attribute) and node.attr == "import_module" and path not in allowed:
                names = ["importlib.import_module"]
            else:
                continue
            bad = [
                n for n in names if n.split(".")[0] in ("jai_mlx", "jai_torch") or n.endswith("import_module")
            ]
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in bad]
    assert found == []


def test_missing_framework_names_the_extra():
    for twin, framework, extra in (("jai_torch", "torch", "[torch]"), ("jai_mlx", "mlx", "[mlx]")):
        result = run(f"import sys; sys.modules[{framework!r}] = None; import {twin}")
        assert result.returncode != 0
        assert f"pip install -e '.{extra}'" in result.stderr, result.stderr


# --- an install without some extras: the commands that do not need them still work ----------------------


def run_without(names: tuple[str, ...], argv: list[str]) -> subprocess.CompletedProcess:
    """`jai argv...` in a process where `names` cannot be imported (None in sys.modules: `import` fails and
    `importlib.util.find_spec` answers None, as when not installed); afterwards none of them is loaded."""
    code = f"import sys\nsys.modules.update(dict.fromkeys({names!r}))\nfrom jai import cli\n"
    code += f"code = cli.main({[str(a) for a in argv]!r})\n"
    code += f"assert not [m for m, v in sys.modules.items() if v and m.split('.')[0] in {names!r}]\n"
    code += "sys.exit(code)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from jai import cli
    from jai.data.prepare import BUNDLED_SAMPLE

    path = tmp_path_factory.mktemp("imports") / "data"
    assert cli.main(["prepare", str(BUNDLED_SAMPLE), "--out", str(path), "--vocab-size", "300"]) == 0
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from tests.test_sample_cli import make_checkpoint

    path = tmp_path_factory.mktemp("imports") / "run"
    make_checkpoint(path)
    return path


def test_jai_train_with_mlx_without_torch(data_dir, tmp_path):
    """An MLX-only install: the whole `jai train --backend mlx` command (CLI, loop, twin) never reaches
    for torch. (tests/test_blas.py checks the twin alone, and that it keeps its fast BLAS.)"""
    pytest.importorskip("mlx.core")
    out = tmp_path / "run"
    tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--batch-size", "2"]
    argv = ["train", "--backend", "mlx", "--device", "cpu", "--data", data_dir, "--out", out, *tiny]
    result = run_without(("torch",), [*argv, "--max-steps", "2", "--eval-interval", "1", "--no-progress"])
    assert result.returncode == 0, result.stderr
    assert (out / "ckpt" / "model.safetensors").is_file() and "step 2" in result.stdout


def test_sample_on_an_mlx_only_install(run_dir):
    """`jai sample --backend mlx` with neither torch nor the serve extra (FastAPI, uvicorn) importable.
    (tests/test_sample_cli.py runs the PyTorch twin without FastAPI.)"""
    pytest.importorskip("mlx.core")
    argv = ["sample", run_dir, "--backend", "mlx", "--device", "cpu", "--prompt", "We are hiring"]
    result = run_without(("torch", "fastapi", "uvicorn", "starlette"), [*argv, "--max-new-tokens", "5"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), result.stderr


def test_serve_without_fastapi_names_the_extra(run_dir):
    result = run_without(("fastapi", "uvicorn", "starlette"), ["serve", run_dir])
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "pip install -e '.[serve]'" in result.stderr


def test_the_architecture_picture_is_drawn_from_the_code():
    """docs/architecture.md's import graph is the code's: an import that adds or drops an arrow between
    stages fails here until tools/import_graph.py redraws it."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "import_graph.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
