"""A small, faithful model of Kubernetes RBAC, for checking deploy/ against real API calls.

Two halves:
* `request_attributes(method, path, query)` turns an HTTP request into what the API server's
  authorizer sees (verb, API group, resource, subresource, namespace, name), following
  k8s.io/apiserver's RequestInfoFactory: GET on a collection is `list`, with watch=true it is
  `watch`; PATCH is `patch`; DELETE on a collection is `deletecollection`; /api, /apis and the
  group/version roots are non-resource discovery URLs.
* `Authorizer` evaluates (Cluster)Roles and bindings as the RBAC authorizer does: apiGroups,
  resources with `*` and `resource/subresource`, resourceNames (never matching a nameless
  list/watch/create), verbs, nonResourceURLs with a trailing `*`, namespaced RoleBindings, and
  ClusterRole aggregation by label selector. The built-in system:discovery grant is included
  because every authenticated identity has it.

test_rbac.py feeds it the operator's calls (a table now, the in-memory API server's request log
when an end-to-end run is available) and deploy/'s RBAC objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

Obj = dict[str, Any]

# k8s bootstrap policy: system:discovery and system:public-info-viewer (bound to
# system:authenticated).
SYSTEM_DISCOVERY: list[Obj] = [
    {
        "nonResourceURLs": [
            "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
            "/openapi/*", "/readyz", "/version", "/version/",
        ],
        "verbs": ["get"],
    }
]  # fmt: skip


@dataclass(frozen=True)
class Request:
    verb: str
    path: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    resource_request: bool = True

    def __str__(self) -> str:
        if not self.resource_request:
            return f"{self.verb} {self.path}"
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = f" in {self.namespace}" if self.namespace else ""
        return (
            f"{self.verb} {self.group or 'core'}/{res}{' ' + self.name if self.name else ''}{where}"
        )


_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def request_attributes(method: str, path: str, query: Mapping[str, Any] | None = None) -> Request:
    """What the authorizer sees for one HTTP request (k8s RequestInfoFactory semantics)."""
    split = urlsplit(path)
    q = {k: v if isinstance(v, str) else str(v[0]) for k, v in (query or {}).items()}
    q.update({k: v[0] for k, v in parse_qs(split.query).items()})
    parts = [p for p in split.path.split("/") if p]
    method = method.upper()
    nonresource = Request(verb=method.lower(), path=split.path, resource_request=False)
    if not parts or parts[0] not in ("api", "apis"):
        return nonresource
    if parts[0] == "api":
        if len(parts) < 3:  # /api, /api/v1
            return nonresource
        group, rest = "", parts[2:]
    else:
        if len(parts) < 4:  # /apis, /apis/g, /apis/g/v
            return nonresource
        group, rest = parts[1], parts[3:]
    watch_path = rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
    namespace = ""
    # /namespaces/{ns}/{resource}... but /namespaces/{name}[/status] is the Namespace itself.
    if rest[0] == "namespaces" and len(rest) >= 2:
        namespace = rest[1]
        if len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if method in ("GET", "HEAD"):
        if watch_path or q.get("watch") in ("1", "true"):
            verb = "watch"
        else:
            verb = "get" if name else "list"
        if not name and verb in ("list", "watch"):
            field = q.get("fieldSelector", "")
            if field.startswith("metadata.name=") and "," not in field:
                name = field.split("=", 1)[1]
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    else:
        verb = _METHOD_VERBS[method]
    return Request(
        verb=verb,
        path=split.path,
        group=group,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
    )


def rule_allows(rule: Obj, req: Request) -> bool:
    verbs = rule.get("verbs", [])
    if "*" not in verbs and req.verb not in verbs:
        return False
    if not req.resource_request:
        for url in rule.get("nonResourceURLs", []):
            if url == req.path or (url.endswith("*") and req.path.startswith(url[:-1])):
                return True
        return False
    groups = rule.get("apiGroups", [])
    if "*" not in groups and req.group not in groups:
        return False
    combined = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
    wanted = {"*", combined}
    if req.subresource:
        wanted |= {f"*/{req.subresource}", f"{req.resource}/*"}
    ok = any(res in wanted for res in rule.get("resources", []))
    if not ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or req.name in names


def _selector_matches(selector: Obj, labels: Mapping[str, str]) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


class Authorizer:
    """RBAC over a set of objects, for one ServiceAccount."""

    def __init__(self, objects: Iterable[Obj], *, namespace: str, service_account: str) -> None:
        objs = list(objects)
        self._cluster_roles = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ClusterRole"}
        self._roles = {
            (o["metadata"]["namespace"], o["metadata"]["name"]): o
            for o in objs
            if o["kind"] == "Role"
        }
        self._bindings = [o for o in objs if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]
        self._subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}

    def cluster_role_rules(self, name: str) -> list[Obj]:
        role = self._cluster_roles.get(name)
        if role is None:
            return []
        agg = role.get("aggregationRule")
        if not agg:
            return list(role.get("rules") or [])
        rules: list[Obj] = []
        for other in self._cluster_roles.values():
            labels = other["metadata"].get("labels") or {}
            if other is not role and any(
                _selector_matches(sel, labels) for sel in agg["clusterRoleSelectors"]
            ):
                rules += other.get("rules") or []
        return rules

    def _bound(self, binding: Obj) -> bool:
        return any(
            s.get("kind") == "ServiceAccount"
            and s.get("name") == self._subject["name"]
            and s.get("namespace") == self._subject["namespace"]
            for s in binding.get("subjects") or []
        )

    def rules_for(self, req: Request) -> list[Obj]:
        """Every rule that applies to this identity at the request's scope."""
        rules = list(SYSTEM_DISCOVERY)
        for b in self._bindings:
            if not self._bound(b):
                continue
            ref = b["roleRef"]
            if b["kind"] == "ClusterRoleBinding":
                rules += self.cluster_role_rules(ref["name"])
            elif req.namespace and b["metadata"]["namespace"] == req.namespace:
                if ref["kind"] == "ClusterRole":
                    rules += self.cluster_role_rules(ref["name"])
                else:
                    role = self._roles.get((req.namespace, ref["name"]))
                    rules += (role or {}).get("rules") or []
        return rules

    def allows(self, req: Request) -> bool:
        return any(rule_allows(r, req) for r in self.rules_for(req))
