"""The tree shows the pipeline: imports point one way (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pitrdiff"

FOUNDATION, STAGE, DIFF, RECOVERY, ORCHESTRATION, FRONT = range(6)


def layer(module: str) -> int:
    """The layer of a pitrdiff module, as docs/ARCHITECTURE.md draws them."""
    parts = module.split(".")
    top = parts[1]
    sub = parts[2] if len(parts) > 2 else ""
    if top in ("errors", "progress", "files", "codec", "_canon", "aws", "units"):
        return FOUNDATION
    if top in ("pitr", "settings", "export") or (top == "spark" and sub != "job"):
        return STAGE
    if top == "diff":
        return DIFF
    if top == "recovery":
        return ORCHESTRATION if sub == "recover" else RECOVERY
    if top in ("drill", "demo", "embedded", "spark"):
        return ORCHESTRATION
    if top in ("cli", "output", "__main__"):
        return FRONT
    raise AssertionError(f"{module}: no layer in docs/ARCHITECTURE.md")


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts != ("pitrdiff",):  # the facade maps public names lazily
            found.append((".".join(parts), path))
    return found


def imported(path: Path) -> list[tuple[str, int]]:
    """Every pitrdiff module a file imports, at the top or inside a function."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pitrdiff."):
            names.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            names += [(a.name, node.lineno) for a in node.names if a.name.startswith("pitrdiff.")]
    return names


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_point_from_front_end_to_foundation(module: str, path: Path) -> None:
    own = layer(module)
    wrong = [
        f"{module}:{line} imports {name} (layer {layer(name)} > {own})"
        for name, line in imported(path)
        if layer(name) > own
    ]
    assert wrong == []


def test_every_module_has_a_layer_and_the_big_ones_are_split() -> None:
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in modules()}
    for module in sizes:
        layer(module)
    assert {m: n for m, n in sizes.items() if n > 900} == {}
