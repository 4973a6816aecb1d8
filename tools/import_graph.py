"""The picture in docs/architecture.md: which stage imports which, read from the code.

    python tools/import_graph.py           # rewrite the Mermaid graph between the markers in the doc
    python tools/import_graph.py --check   # exit 1 if the doc's graph is not the code's (a test runs this)

Every import counts, those inside functions too (the twins and the commands import lazily), except the
ones under `if __name__ == "__main__":` (a module run as a script hands itself to the `jai` dispatcher).
The import contracts (pyproject.toml, `make lint`) enforce the rule; this only draws it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- import-graph: made by tools/import_graph.py -->", "<!-- /import-graph -->"
# folder -> the package name it installs as (pyproject.toml's package-dir)
FOLDERS = {"jai": "jai", "data": "jai.data", "convert": "jai.convert", "benchmarks": "jai.benchmarks"}
FOLDERS |= {"jai_mlx": "jai_mlx", "jai_torch": "jai_torch"}
STAGES = ("cli", "server", "inference", "evaluation", "training", "retrieval", "reporting", "checkpoint")
# top to bottom, as the graph is drawn
ORDER = ("cli", "benchmarks", "convert", "server", "inference", "evaluation", "training", "retrieval")
ORDER += ("reporting", "jai_mlx", "jai_torch", "data", "checkpoint", "base")


def stage(module: str) -> str:
    """The box a module belongs to: a stage of jai, a top-level folder, a twin, or the base modules."""
    parts = module.split(".")
    if parts[0] in ("jai_mlx", "jai_torch"):
        return parts[0]
    if parts[0] != "jai":
        return ""  # outside the project
    if len(parts) > 1 and (parts[1] in STAGES or f"jai.{parts[1]}" in FOLDERS.values()):
        return parts[1]
    return "base"


def imports(tree: ast.Module) -> list[str]:
    """Absolute imports anywhere in the file but under `if __name__ == "__main__":`."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.extend(f"{node.module}.{a.name}" for a in node.names)  # a name may be a submodule
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def edges() -> set[tuple[str, str]]:
    out = set()
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            module = ".".join([package, *path.relative_to(ROOT / folder).with_suffix("").parts])
            for imported in imports(ast.parse(path.read_text(encoding="utf-8"))):
                a, b = stage(module), stage(imported)
                if b and a != b:
                    out.add((a, b))
    return out


def mermaid() -> str:
    lines = ["```mermaid", "flowchart TD"]
    for a, b in sorted(edges(), key=lambda e: (ORDER.index(e[0]), ORDER.index(e[1]))):
        lines.append(f"    {a} --> {b}")
    return "\n".join([*lines, "```"])


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    new = f"{head}{BEGIN}\n{mermaid()}\n{END}{tail}"
    if "--check" in argv:
        if new != text:
            print(f"{DOC}: the import graph is out of date: run tools/import_graph.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
