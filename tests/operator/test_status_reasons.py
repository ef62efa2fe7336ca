"""The condition reasons the docs name are exactly the reasons the operator sets.

The code's set is read from the source: every reason literal the status code writes
(``_cond``), every ``Problem`` the operator builds, every reason a shard's health ranks, the
fencing verdict that refuses (``SplitBrain``), and the kubeconfig loader's errors, which reach
the condition as they are (``Problem(exc.reason, ...)`` in operator/remotes.py). The docs' set is
the reasons column of docs/operator.md's condition table; docs/api.md may name only reasons from
the code.
"""

from __future__ import annotations

import ast
import re

from tests.deploy.manifests import REPO

PKG = REPO / "ray_syncer"
# Raised only while loading the operator's own in-cluster config: never a KRMSyncer's reason.
OWN_CLUSTER_ONLY = {"InClusterUnavailable"}
CONDITION_TYPES = {"Ready", "Suspended", "DestinationReachable", "Synced", "Degraded",
                   "RecoveryPointObjective"}


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _strings(node: ast.AST | None) -> list[str]:
    """The string literals an expression can evaluate to (constants and conditionals of them)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def code_reasons() -> set[str]:
    found: set[str] = set()
    files = [*(PKG / "operator").glob("*.py"), PKG / "fencing.py", PKG / "kube" / "config.py"]
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn, args = _name(node.func), node.args
                if fn == "_cond" and len(args) >= 3:
                    found.update(_strings(args[2]))
                elif fn in ("Problem", "KubeconfigError") and args:
                    found.update(_strings(args[0]))
                elif (fn == "FenceDecision" and len(args) >= 2 and isinstance(args[0], ast.Constant)
                      and args[0].value is True):
                    found.update(_strings(args[1]))  # only a fenced decision becomes a reason
            elif isinstance(node, ast.FunctionDef) and node.name == "_shard_problem":
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple):
                        found.update(_strings(ret.value.elts[1]))
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in ("reason", "why") for t in node.targets
            ):
                found.update(_strings(node.value))
    return found - OWN_CLUSTER_ONLY


def ready_reasons() -> set[str]:
    """The reasons ``Ready`` can carry: its literals in operator/status.py, the ``reason``
    variable of the function that sets it, and every problem's reason (``p.reason``)."""
    tree = ast.parse((PKG / "operator" / "status.py").read_text())
    dynamic = code_reasons() - _literal_cond_reasons(tree)
    found: set[str] = set()
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        local = {v for n in ast.walk(fn) if isinstance(n, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == "reason" for t in n.targets)
                 for v in _strings(n.value)}
        for call in ast.walk(fn):
            if not (isinstance(call, ast.Call) and _name(call.func) == "_cond"
                    and _strings(call.args[0]) == ["Ready"]):
                continue
            arg = call.args[2]
            if isinstance(arg, ast.Name) and arg.id == "reason":
                found |= local
            elif isinstance(arg, ast.Attribute) and arg.attr == "reason":
                found |= dynamic
            else:
                found.update(_strings(arg))
    return found


def _literal_cond_reasons(tree: ast.AST) -> set[str]:
    return {v for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n.func) == "_cond"
            for v in _strings(n.args[2])}


def _table(text: str, header: str) -> list[list[str]]:
    lines = text[text.index(header):].splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def docs_reasons() -> set[str]:
    text = (REPO / "docs" / "operator.md").read_text()
    rows = _table(text, "| condition | status | reasons |")
    assert {r[0] for r in rows} == CONDITION_TYPES, "one or more rows per condition type"
    return {w for r in rows for w in re.findall(r"`([A-Z][A-Za-z]+)`", r[2])}


def test_the_extraction_sees_the_known_reasons() -> None:
    # If a refactor hides reasons from the scan, this says so before the comparison misleads.
    assert {"Unreachable", "SecretNotFound", "InvalidSpec", "ShardsStarting", "Conflicts",
            "SplitBrain", "KubeconfigNoContext", "TargetMissed"} <= code_reasons()


def test_operator_docs_name_every_reason_the_code_sets_and_no_other() -> None:
    code, docs = code_reasons(), docs_reasons()
    assert not code - docs, f"set by the code, missing in docs/operator.md: {sorted(code - docs)}"
    assert not docs - code, f"in docs/operator.md, never set by the code: {sorted(docs - code)}"


def test_api_docs_name_only_reasons_the_code_sets() -> None:
    text = (REPO / "docs" / "api.md").read_text()
    section = text[text.index("### Conditions"):text.index("### Printer columns")]
    rows = _table(section, "| type | `True` means |")
    named = {w for r in rows for w in re.findall(r"`([A-Z][A-Za-z]+)`", r[1])}
    unknown = named - code_reasons() - CONDITION_TYPES - {"True", "False", "Unknown"}
    assert not unknown, f"docs/api.md names reasons the code never sets: {sorted(unknown)}"
    assert {r[0].strip("`") for r in rows} == CONDITION_TYPES
    (ready,) = [r for r in rows if r[0] == "`Ready`"]
    not_ready = set(re.findall(r"`([A-Z][A-Za-z]+)`", ready[1])) - {"False", "True"}
    assert not_ready and not not_ready - ready_reasons(), (
        f"docs/api.md gives Ready reasons Ready never has: {sorted(not_ready - ready_reasons())}"
    )


def test_ready_reasons_are_read_from_the_code() -> None:
    ready = ready_reasons()
    assert {"Running", "ShardsStarting", "Unreachable", "SecretNotFound", "SplitBrain"} <= ready
    assert not {"DestinationUnreachable", "Syncing", "Healthy", "Active"} & ready


def test_ready_names_an_unreachable_destination_unreachable() -> None:
    # The reason docs/api.md once gave wrongly (DestinationUnreachable is Synced's, not Ready's).
    from ray_syncer.operator.status import Problem, SyncerFacts, conditions_for

    facts = SyncerFacts(generation=1, destination=Problem("Unreachable", "cannot reach it"),
                        expected_shards=["a"])
    by_type = {c["type"]: c["reason"] for c in conditions_for(facts, [])}
    assert by_type["Ready"] == "Unreachable"
    assert by_type["Synced"] == "DestinationUnreachable"
