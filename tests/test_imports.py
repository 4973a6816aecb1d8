"""The import graph is one-way: shared code never pulls in a framework, and a missing one is explained."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_shared_code_imports_neither_framework():
    shared = sorted(
        f"{pkg}.{p.stem}"
        for pkg in ("jai", "data")
        for p in (ROOT / pkg).glob("*.py")
        if p.stem != "__init__"
    )
    assert "jai.config" in shared and "jai.weights" in shared
    code = f"import importlib, sys\nfor m in {shared!r}: importlib.import_module(m)\n" + (
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('mlx', 'torch'))\nprint(bad)"
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_framework_names_the_extra():
    for twin, framework, extra in (("jai_torch", "torch", "[torch]"), ("jai_mlx", "mlx", "[mlx]")):
        result = run(f"import sys; sys.modules[{framework!r}] = None; import {twin}")
        assert result.returncode != 0
        assert f"pip install -e '.{extra}'" in result.stderr, result.stderr
