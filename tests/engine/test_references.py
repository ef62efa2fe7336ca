"""Namespace mapping rewrites references into the mapped namespace, and only those.

Every row of ``REWRITES`` is exercised by the transform itself: a source object of that kind
naming its own namespace, another namespace, and no namespace at that path; the copy must
name the destination namespace exactly where the source named its own.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ray_syncer.engine.references import NAMESPACE_NAME_LABEL, REWRITES, Rewrite
from ray_syncer.engine.spec import ShardSpec
from ray_syncer.engine.transform import managed_by_value, transform

SRC, DST, OTHER = "shop", "shop-dr", "billing"


def _spec(group: str, kind: str, dest_namespace: str | None = DST) -> ShardSpec:
    return ShardSpec(syncer_namespace="ops", syncer_name="dr", group=group, version="v1",
                     kind=kind, dest_namespace=dest_namespace)


def _copy(group: str, kind: str, body: dict[str, Any], dest_namespace: str | None = DST,
          ) -> dict[str, Any]:
    obj = {"apiVersion": f"{group}/v1" if group else "v1", "kind": kind,
           "metadata": {"name": "x", "namespace": SRC}, **copy.deepcopy(body)}
    return transform(obj, spec=_spec(group, kind, dest_namespace),
                     managed_by=managed_by_value("ops", "dr"), namespaced=True,
                     status_subresource=False).body


def _reference(how: str, ns: str) -> Any:
    if how == "field":
        return ns
    if how == "names":
        return [OTHER, ns]
    return {"matchLabels": {NAMESPACE_NAME_LABEL: ns},
            "matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In",
                                  "values": [ns, OTHER]},
                                 {"key": "team", "operator": "In", "values": [ns]}]}


def _expected(how: str, ns: str, was: str) -> Any:
    """What the copy holds where the source held ``_reference(how, was)``: ``ns`` as the
    namespace."""
    ref = _reference(how, ns)
    if how == "selector":
        ref["matchExpressions"][1]["values"] = [was]  # another label: not a namespace name
    return ref


def _build(path: str, leaf: Any, when: tuple[str, str] | None) -> dict[str, Any]:
    """A body holding ``leaf`` at ``path`` (one item per list step)."""
    parts = path.split(".")
    node: Any = leaf
    for i, part in enumerate(reversed(parts)):
        if i == 0:
            node = {part: node}
            if when:
                node[when[0]] = when[1]
            continue
        node = {part[:-2]: [node]} if part.endswith("[]") else {part: node}
    return node  # type: ignore[no-any-return]


def _cases() -> list[tuple[str, str, Rewrite]]:
    return [(r.group, kind, r) for r in REWRITES for kind in r.kinds]


@pytest.mark.parametrize(("group", "kind", "rule"), _cases(),
                         ids=[f"{k}:{r.path}" for _, k, r in _cases()])
def test_a_reference_to_the_mapped_namespace_follows_it(group: str, kind: str, rule: Rewrite) -> None:
    own = _copy(group, kind, _build(rule.path, _reference(rule.how, SRC), rule.when))
    assert own == {**own, **_build(rule.path, _expected(rule.how, DST, SRC), rule.when)}
    # Into another namespace: untouched.
    other = _copy(group, kind, _build(rule.path, _reference(rule.how, OTHER), rule.when))
    assert other == {**other, **_build(rule.path, _expected(rule.how, OTHER, OTHER), rule.when)}
    # Without mapping: untouched.
    plain = _copy(group, kind, _build(rule.path, _reference(rule.how, SRC), rule.when),
                  dest_namespace=None)
    assert plain == {**plain, **_build(rule.path, _expected(rule.how, SRC, SRC), rule.when)}


def test_a_role_binding_keeps_users_groups_and_other_namespaces() -> None:
    body = {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [
            {"kind": "ServiceAccount", "name": "app", "namespace": SRC},
            {"kind": "ServiceAccount", "name": "ci", "namespace": OTHER},
            {"kind": "ServiceAccount", "name": "implicit"},  # the binding's own namespace
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": SRC},
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs",
             "namespace": SRC},  # not a field of a Group; left as it is
        ],
    }
    got = _copy("rbac.authorization.k8s.io", "RoleBinding", body)
    assert got["subjects"] == [
        {"kind": "ServiceAccount", "name": "app", "namespace": DST},
        {"kind": "ServiceAccount", "name": "ci", "namespace": OTHER},
        {"kind": "ServiceAccount", "name": "implicit"},
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": SRC},
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs",
         "namespace": SRC},
    ]
    assert got["roleRef"] == body["roleRef"]


def test_a_deployments_affinity_follows_and_the_source_is_untouched() -> None:
    term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone",
            "namespaces": [SRC, OTHER]}
    source = {"spec": {"template": {"spec": {"affinity": {"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term],
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": term}],
    }}}}}}
    before = copy.deepcopy(source)
    got = _copy("apps", "Deployment", source)
    aff = got["spec"]["template"]["spec"]["affinity"]["podAffinity"]
    assert aff["requiredDuringSchedulingIgnoredDuringExecution"][0]["namespaces"] == [DST, OTHER]
    pref = aff["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert pref["namespaces"] == [DST, OTHER]
    assert source == before


def test_the_hash_covers_the_rewrite() -> None:
    body = {"subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": SRC}]}
    spec = _spec("rbac.authorization.k8s.io", "RoleBinding")
    obj = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": "x", "namespace": SRC}, **body}
    mapped = transform(obj, spec=spec, managed_by="m", namespaced=True, status_subresource=False)
    spec2 = _spec("rbac.authorization.k8s.io", "RoleBinding", dest_namespace="elsewhere")
    other = transform(obj, spec=spec2, managed_by="m", namespaced=True, status_subresource=False)
    assert mapped.hash != other.hash


def test_the_design_doc_prints_the_table() -> None:
    """docs/design.md's table names every kind and field REWRITES has, and no other kind."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "design.md").read_text()
    table = doc.split("<!-- namespace-references -->")[1].split("<!-- /namespace-references -->")[0]
    rows = {line.split("|")[1].strip(): line.split("|")[2] for line in table.splitlines()
            if line.strip().startswith("|") and not line.strip().startswith("|---")}
    rows.pop("Kind")
    kinds = {k.split(" (")[0]: fields for kk, fields in rows.items() for k in kk.split(", ")}
    assert set(kinds) == {kind for r in REWRITES for kind in r.kinds}
    for rule in REWRITES:
        for kind in rule.kinds:
            fields = kinds[kind]
            if "affinity" in rule.path:
                assert "affinity" in fields and rule.path.rsplit(".", 1)[1] in fields
            else:
                assert f"`{rule.path}`" in fields, (kind, rule.path)
                if rule.when:
                    assert f"`{rule.when[0]}` is `{rule.when[1]}`" in fields
