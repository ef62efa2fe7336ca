"""Architecture rules that keep the codebase readable (docs/design.md §8).

The package is a house of floors; a module imports only from floors below its own, or from
its own unit (a package such as ``engine/``, or a single module):

    7  __main__                      ``python -m ray_syncer``
    6  cli                           the command line
    5  run, demo, dr                 processes and tools: they compose the floors below
    4  operator                      the controller: KRMSyncers in, desired shards out, status
    3  fleet                         shard hosts, the supervisor, and Ray under both
    2  engine, fencing               the data path of one shard; split-brain fencing
    1  api, kube, metrics            the API models, talking to clusters, metrics
    0  ray_syncer (its __init__)     names and constants
       clikit                        the command line's conventions (flags, output, exit codes)

Every import counts, also one inside a function. Ray is imported only by ``fleet/actors.py``,
``fleet/local.py`` and ``fleet/testing.py``; nothing in the product imports ``fleet/testing.py``
(test support) or the test kit, except ``demo`` which runs on it. There is no import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ray_syncer"
FLOORS = {
    "ray_syncer": 0, "clikit": 0,
    "api": 1, "kube": 1, "metrics": 1,
    "engine": 2, "fencing": 2,
    "fleet": 3,
    "operator": 4,
    "run": 5, "demo": 5, "dr": 5,
    "cli": 6,
    "__main__": 7,
}
RAY_MODULES = {"ray_syncer.fleet.actors", "ray_syncer.fleet.local", "ray_syncer.fleet.testing"}
TEST_SUPPORT = {"ray_syncer.fleet.testing"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def unit(module: str) -> str:
    """The unit a module belongs to: ``engine`` for ``ray_syncer.engine.shard``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; ``from x import y`` may name module x.y)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def package_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: {i for i in imports(p) if i in modules and i != m} for m, p in modules.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, targets in graph.items():
        for target in targets:
            if unit(target) == unit(mod) or target == "ray_syncer":
                continue
            if FLOORS[unit(target)] >= FLOORS[unit(mod)]:
                bad.append(f"{mod} (floor {FLOORS[unit(mod)]}) -> {target} "
                           f"(floor {FLOORS[unit(target)]})")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_unit_has_a_floor() -> None:
    assert {unit(m) for m in package_graph()} <= set(FLOORS)


def test_no_module_imports_from_its_own_floor_or_above() -> None:
    assert upward_imports(package_graph()) == []


def test_no_import_cycle() -> None:
    assert cycles(package_graph()) == []


def test_ray_is_imported_only_by_the_fleets_ray_modules() -> None:
    offenders = sorted(
        module_name(p) for p in PACKAGE.rglob("*.py")
        if module_name(p) not in RAY_MODULES and any(
            i == "ray" or i.startswith("ray.") for i in imports(p))
    )
    assert offenders == []


def test_the_operator_imports_nothing_of_ray() -> None:
    graph = package_graph()
    for mod, targets in graph.items():
        if unit(mod) == "operator":
            assert not targets & RAY_MODULES, (mod, targets & RAY_MODULES)


def test_the_product_imports_neither_test_support_nor_the_test_kit() -> None:
    for path in PACKAGE.rglob("*.py"):
        mod = module_name(path)
        found = imports(path)
        assert not found & TEST_SUPPORT or mod in TEST_SUPPORT, mod
        if mod != "ray_syncer.demo":
            assert not any(i.startswith("ray_syncer_testkit") for i in found), mod


def test_the_rules_can_fail() -> None:
    graph = {"ray_syncer.engine.shard": {"ray_syncer.operator.serve"},
             "ray_syncer.operator.serve": {"ray_syncer.engine.shard"}}
    assert upward_imports(graph) == [
        "ray_syncer.engine.shard (floor 2) -> ray_syncer.operator.serve (floor 4)"]
    assert cycles(graph) == [["ray_syncer.engine.shard", "ray_syncer.operator.serve"]]
