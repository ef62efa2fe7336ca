"""Namespace references a copy must follow when ``destination.namespace`` maps its namespace.

A RoleBinding copied from ``shop`` into ``shop-dr`` that still names the ServiceAccount
``shop/app`` grants nothing to ``shop-dr/app``, the account the standby's workload runs
as. So where a built-in kind names a namespace, and that namespace is the object's own
source namespace (the one being mapped), the copy names the destination namespace instead.
A reference into any other namespace is left exactly as it is: the syncer maps one
namespace, not the ones it happens to point at.

:data:`REWRITES` is the table (docs/design.md prints it; a test holds the two equal). Paths
use ``[]`` for every item of a list. Pod templates are everywhere a pod spec is (Pods,
PodTemplates, ReplicationControllers, the apps kinds, Jobs, CronJobs): their affinity terms
name namespaces in a list and by the ``kubernetes.io/metadata.name`` label.

Cluster-scoped kinds are not mapped (they have no namespace), so their references (a
ClusterRoleBinding's subjects, a webhook's service) are left alone as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# The label the API server sets on every Namespace to its name (Kubernetes 1.21+).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

_AFFINITY_TERMS = (
    "affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[]",
    "affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[].podAffinityTerm",
    "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[]",
    "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[].podAffinityTerm",
)


@dataclass(frozen=True)
class Rewrite:
    """Where a kind names a namespace. ``how``: a namespace field, a list of names, or a
    label selector whose ``kubernetes.io/metadata.name`` picks namespaces by name."""

    group: str
    kinds: tuple[str, ...]
    path: str
    how: str  # "field" | "names" | "selector"
    when: tuple[str, str] | None = None  # (key, value) the containing item must have

    def describe(self) -> str:
        cond = f" (where {self.when[0]} is {self.when[1]})" if self.when else ""
        return f"{self.path}{cond}"


def _pod_spec_rewrites() -> list[Rewrite]:
    """Affinity terms, under every place a kind holds a pod spec."""
    out: list[Rewrite] = []
    holders = (
        ("", ("Pod",), "spec"),
        ("", ("PodTemplate",), "template.spec"),
        ("", ("ReplicationController",), "spec.template.spec"),
        ("apps", ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"), "spec.template.spec"),
        ("batch", ("Job",), "spec.template.spec"),
        ("batch", ("CronJob",), "spec.jobTemplate.spec.template.spec"),
    )
    for group, kinds, prefix in holders:
        for term in _AFFINITY_TERMS:
            out.append(Rewrite(group, kinds, f"{prefix}.{term}.namespaces", "names"))
            out.append(Rewrite(group, kinds, f"{prefix}.{term}.namespaceSelector", "selector"))
    return out


REWRITES: tuple[Rewrite, ...] = (
    Rewrite("rbac.authorization.k8s.io", ("RoleBinding",), "subjects[].namespace", "field",
            when=("kind", "ServiceAccount")),
    Rewrite("", ("ServiceAccount",), "secrets[].namespace", "field"),
    Rewrite("", ("PersistentVolumeClaim",), "spec.dataSourceRef.namespace", "field"),
    Rewrite("", ("Endpoints",), "subsets[].addresses[].targetRef.namespace", "field"),
    Rewrite("", ("Endpoints",), "subsets[].notReadyAddresses[].targetRef.namespace", "field"),
    Rewrite("discovery.k8s.io", ("EndpointSlice",), "endpoints[].targetRef.namespace", "field"),
    Rewrite("networking.k8s.io", ("NetworkPolicy",), "spec.ingress[].from[].namespaceSelector",
            "selector"),
    Rewrite("networking.k8s.io", ("NetworkPolicy",), "spec.egress[].to[].namespaceSelector",
            "selector"),
    *_pod_spec_rewrites(),
)


def rewrite_references(
    group: str, kind: str, body: dict[str, Any], *, source_ns: str, dest_ns: str
) -> None:
    """Point ``body``'s references to ``source_ns`` at ``dest_ns`` (in place)."""
    if source_ns == dest_ns:
        return
    for rule in REWRITES:
        if rule.group != group or kind not in rule.kinds:
            continue
        *parents, last = _split(rule.path)
        for holder in _walk(body, parents):
            if rule.when and holder.get(rule.when[0]) != rule.when[1]:
                continue
            _APPLY[rule.how](holder, last, source_ns, dest_ns)


def _split(path: str) -> list[str]:
    """``a.b[].c`` -> ``["a", "b[]", "c"]``."""
    return path.split(".")


def _walk(node: Any, parts: list[str]) -> Iterator[dict[str, Any]]:
    """Every dict at ``parts`` below ``node`` (``x[]`` steps into each item of list ``x``)."""
    if not isinstance(node, dict):
        return
    if not parts:
        yield node
        return
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        items = node.get(head[:-2])
        for item in items if isinstance(items, list) else ():
            yield from _walk(item, rest)
    else:
        yield from _walk(node.get(head), rest)


def _field(holder: dict[str, Any], key: str, src: str, dst: str) -> None:
    if holder.get(key) == src:
        holder[key] = dst


def _names(holder: dict[str, Any], key: str, src: str, dst: str) -> None:
    names = holder.get(key)
    if isinstance(names, list):
        holder[key] = [dst if n == src else n for n in names]


def _selector(holder: dict[str, Any], key: str, src: str, dst: str) -> None:
    selector = holder.get(key)
    if not isinstance(selector, dict):
        return
    match = selector.get("matchLabels")
    if isinstance(match, dict) and match.get(NAMESPACE_NAME_LABEL) == src:
        match[NAMESPACE_NAME_LABEL] = dst
    for expr in selector.get("matchExpressions") or []:
        if (isinstance(expr, dict) and expr.get("key") == NAMESPACE_NAME_LABEL
                and expr.get("operator") in ("In", "NotIn")):
            _names(expr, "values", src, dst)


_APPLY: dict[str, Callable[[dict[str, Any], str, str, str], None]] = {
    "field": _field,
    "names": _names,
    "selector": _selector,
}
