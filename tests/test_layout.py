"""Architecture rules that keep the codebase readable (docs/design.md §8)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ray_syncer"
# The one module allowed to import Ray (docs/design.md §5: "one module holds the Ray calls").
RAY_MODULE = PACKAGE / "actors.py"


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_ray_is_imported_in_one_module_only() -> None:
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p != RAY_MODULE and "ray" in _imported_roots(p)
    ]
    assert offenders == [], f"import ray outside ray_syncer/actors.py: {offenders}"


def test_the_rule_detects_an_offender(tmp_path: Path) -> None:
    # The checker itself must be able to fail.
    bad = tmp_path / "bad.py"
    bad.write_text("import ray.util\nfrom ray import remote\n")
    assert "ray" in _imported_roots(bad)


def test_engine_does_not_import_the_operator_or_testing() -> None:
    # The engine is plain asyncio, usable without the operator or the test server.
    for p in (PACKAGE / "engine").rglob("*.py"):
        src = p.read_text()
        assert "ray_syncer.operator" not in src, p
        assert "ray_syncer.testing" not in src, p
