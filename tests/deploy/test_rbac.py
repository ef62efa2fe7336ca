"""deploy/'s RBAC covers every API call the operator makes, and grants nothing it does not use.

The calls come from a table (CALLS, below), kept in step with the code: each row names the
module that makes it. test_rbac_e2e.py checks the same rules against the in-memory API
server's request log of a real run. The RBAC model is rbac.py; the tests at the bottom show
that it can say no.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.manifests import BASE, DEPLOY, Obj, kustomize_resources, load_docs
from tests.deploy.rbac import Authorizer, Request, request_attributes, rule_allows

NS = "krmsyncer-system"
EXAMPLES = DEPLOY / "rbac-examples"
KRM = "/apis/syncer.gkelabs.io/v1alpha1"


def operator_identity(*extra: Path) -> Authorizer:
    """The operator's ServiceAccount in its own cluster: deploy/ plus what the user added."""
    objs = [o for _, o in kustomize_resources(DEPLOY)]
    objs += [o for p in extra for o in load_docs(p)]
    return Authorizer(objs, namespace=NS, service_account="krmsyncer")


def writer_identity(*extra: Path) -> Authorizer:
    """The kubeconfig identity in the destination cluster: deploy/destination/ plus examples."""
    objs = [o for _, o in kustomize_resources(DEPLOY / "destination")]
    objs += [o for p in extra for o in load_docs(p)]
    return Authorizer(objs, namespace=NS, service_account="krmsyncer-writer")


@dataclass(frozen=True)
class Call:
    who: str  # "operator" (own cluster) or "writer" (destination)
    method: str
    path: str
    query: str
    why: str

    @property
    def request(self) -> Request:
        return request_attributes(
            self.method, f"{self.path}?{self.query}" if self.query else self.path
        )


# Every call, with the code that makes it. Synced kinds are ConfigMaps and Secrets here, as
# granted by deploy/rbac-examples/.
CALLS = [
    # ray_syncer/operator/reconciler.py: informers, status, Events, kubeconfig Secrets.
    Call("operator", "GET", f"{KRM}/krmsyncers", "limit=500", "informer list, all namespaces"),
    Call("operator", "GET", f"{KRM}/krmsyncers", "watch=1&resourceVersion=7", "informer watch"),
    Call("operator", "GET", f"{KRM}/namespaces/team-a/krmsyncers", "limit=500", "--namespace list"),
    Call("operator", "GET", f"{KRM}/namespaces/team-a/krmsyncers", "watch=1", "--namespace watch"),
    Call("operator", "PATCH", f"{KRM}/namespaces/team-a/krmsyncers/s1/status", "", "status"),
    Call("operator", "GET", "/api/v1/secrets", "limit=500", "Secret informer (rotation)"),
    Call("operator", "GET", "/api/v1/secrets", "watch=1", "Secret informer watch"),
    Call("operator", "GET", "/api/v1/namespaces/team-a/secrets/dest-kubeconfig", "", "kubeconfig"),
    Call("operator", "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "limit=500", "CRD informer"),
    Call("operator", "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "watch=1", "CRD informer watch"),
    Call("operator", "POST", "/api/v1/namespaces/team-a/events", "", "Event on a KRMSyncer"),
    # ray_syncer/kube/client.py + discovery.py: discovery for rules and globs.
    Call("operator", "GET", "/api", "", "discovery"),
    Call("operator", "GET", "/api/v1", "", "discovery"),
    Call("operator", "GET", "/apis", "", "discovery"),
    Call("operator", "GET", "/apis/syncer.gkelabs.io/v1alpha1", "", "discovery"),
    # ray_syncer/engine/watcher.py in the shard actors (same ServiceAccount): the source side.
    Call("operator", "GET", "/api/v1/configmaps", "limit=500", "shard list, all namespaces"),
    Call("operator", "GET", "/api/v1/configmaps", "watch=1&allowWatchBookmarks=true", "shard watch"),
    Call("operator", "GET", "/api/v1/namespaces/app/secrets", "limit=500", "shard list, one ns"),
    Call("operator", "GET", "/api/v1/namespaces/app/secrets", "watch=1", "shard watch, one ns"),
    # ray_syncer/engine/ownership.py: does the KRMSyncer that made a copy still exist?
    Call("operator", "GET", f"{KRM}/namespaces/team-a/krmsyncers/old", "", "takeover check"),
    # ray_syncer/engine/applier.py and watcher.py against the destination (writer identity).
    Call("writer", "GET", "/api", "", "reachability probe / discovery"),
    Call("writer", "GET", "/apis", "", "discovery"),
    Call("writer", "GET", "/api/v1/namespaces/app", "", "does the namespace exist"),
    Call("writer", "POST", "/api/v1/namespaces", "", "create a missing namespace"),
    Call("writer", "POST", "/api/v1/namespaces/app/configmaps", "fieldManager=krm-syncer", "a new copy (refused if the name is taken)"),
    Call("writer", "PATCH", "/api/v1/namespaces/app/configmaps/c1", "fieldManager=krm-syncer&force=true", "server-side apply"),
    Call("writer", "PATCH", "/api/v1/namespaces/app/configmaps/c1", "fieldManager=krm-syncer", "a created copy's fields to the apply manager"),
    Call("writer", "GET", "/api/v1/namespaces/app/configmaps/c1", "", "ownership check"),
    Call("writer", "DELETE", "/api/v1/namespaces/app/configmaps/c1", "", "delete with uid precondition"),
    Call("writer", "GET", "/api/v1/configmaps", "labelSelector=syncer.gkelabs.io%2Fmanaged-by%3Ds1", "managed-copy list"),
    Call("writer", "GET", "/api/v1/configmaps", "watch=1&labelSelector=syncer.gkelabs.io%2Fmanaged-by%3Ds1", "drift watch"),
    # Split-brain fencing: read the destination's own KRMSyncers before writing.
    Call("writer", "GET", f"{KRM}/krmsyncers", "", "fencing: is the standby active?"),
    Call("writer", "GET", f"{KRM}/namespaces/team-a/krmsyncers/s1", "", "fencing"),
    Call("writer", "GET", f"{KRM}/namespaces/team-a/krmsyncers/old", "", "takeover: a pull-mode owner?"),
    # CRDs before their objects: is the CRD Established on the destination?
    Call("writer", "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com", "", "CRD ordering"),
]  # fmt: skip


def _identity(who: str) -> Authorizer:
    if who == "operator":
        return operator_identity(EXAMPLES / "source-configmaps-secrets.yaml")
    return writer_identity(EXAMPLES / "destination-configmaps-secrets.yaml")


@pytest.mark.parametrize("call", CALLS, ids=[f"{c.who}:{c.request}" for c in CALLS])
def test_every_call_is_allowed(call: Call) -> None:
    assert _identity(call.who).allows(call.request), (
        f"{call.who} may not {call.request} ({call.why})"
    )


def _rules(path: Path, name: str) -> list[Obj]:
    (role,) = [
        o for o in load_docs(path) if o["kind"] == "ClusterRole" and o["metadata"]["name"] == name
    ]
    return role["rules"]


@pytest.mark.parametrize(
    ("path", "role", "who"),
    [
        (BASE / "rbac.yaml", "krmsyncer-operator", "operator"),
        (BASE / "rbac.yaml", "krmsyncer-operator-secrets", "operator"),
        (DEPLOY / "destination" / "rbac.yaml", "krmsyncer-destination-base", "writer"),
    ],
)
def test_no_rule_grants_more_than_the_calls_use(path: Path, role: str, who: str) -> None:
    # Least privilege: every (group, resource, verb) a rule grants is used by some call.
    requests = [c.request for c in CALLS if c.who == who]
    for rule in _rules(path, role):
        assert "*" not in rule.get("verbs", []) and "*" not in rule.get("resources", [])
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                for verb in rule["verbs"]:
                    single = {"apiGroups": [group], "resources": [res], "verbs": [verb]}
                    assert any(rule_allows(single, r) for r in requests), (
                        f"{role} grants {verb} on {group or 'core'}/{res}, which nothing uses"
                    )


def test_synced_kinds_need_an_aggregated_role() -> None:
    # Out of the box the operator reads no user kinds; the example adds exactly its kinds.
    list_cms = request_attributes("GET", "/api/v1/configmaps?limit=500")
    list_deploys = request_attributes("GET", "/apis/apps/v1/deployments?limit=500")
    assert not operator_identity().allows(list_cms)
    with_example = operator_identity(EXAMPLES / "source-configmaps-secrets.yaml")
    assert with_example.allows(list_cms)
    assert not with_example.allows(list_deploys)
    # Read only on the source side.
    assert not with_example.allows(
        request_attributes("DELETE", "/api/v1/namespaces/a/configmaps/x")
    )


@pytest.mark.parametrize(
    ("who", "method", "path"),
    [
        ("operator", "PUT", f"{KRM}/namespaces/team-a/krmsyncers/s1"),  # never the spec
        ("operator", "DELETE", "/api/v1/namespaces/team-a/secrets/dest-kubeconfig"),
        ("operator", "POST", "/api/v1/namespaces"),
        ("operator", "GET", "/api/v1/pods"),
        ("operator", "PATCH", "/api/v1/namespaces/team-a/events/e1"),
        ("writer", "GET", "/api/v1/secrets"),  # no example for the writer: see below
        ("writer", "DELETE", "/api/v1/namespaces/app"),
        ("writer", "PATCH", f"{KRM}/namespaces/team-a/krmsyncers/s1/status"),
    ],
)
def test_the_checker_denies_calls_the_rules_do_not_cover(who: str, method: str, path: str) -> None:
    ident = (
        operator_identity(EXAMPLES / "source-configmaps-secrets.yaml")
        if who == "operator"
        else writer_identity()
    )
    assert not ident.allows(request_attributes(method, path))


def test_narrowing_secrets_to_one_namespace() -> None:
    # The documented swap: drop the cluster-wide binding, bind the same ClusterRole in team-a.
    objs = [
        o
        for _, o in kustomize_resources(DEPLOY)
        if (o["kind"], o["metadata"]["name"])
        != ("ClusterRoleBinding", "krmsyncer-operator-secrets")
    ]
    objs += load_docs(EXAMPLES / "secrets-in-one-namespace.yaml")
    narrowed = Authorizer(objs, namespace=NS, service_account="krmsyncer")
    assert narrowed.allows(request_attributes("GET", "/api/v1/namespaces/team-a/secrets?watch=1"))
    assert narrowed.allows(request_attributes("GET", "/api/v1/namespaces/team-a/secrets/k"))
    assert not narrowed.allows(request_attributes("GET", "/api/v1/secrets?limit=500"))
    assert not narrowed.allows(request_attributes("GET", "/api/v1/namespaces/team-b/secrets/k"))


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        (
            "GET",
            "/api/v1/namespaces/a/configmaps?watch=true",
            Request("watch", "/api/v1/namespaces/a/configmaps", "", "configmaps", "", "a", ""),
        ),
        (
            "GET",
            "/api/v1/watch/namespaces/a/configmaps",
            Request(
                "watch", "/api/v1/watch/namespaces/a/configmaps", "", "configmaps", "", "a", ""
            ),
        ),
        (
            "GET",
            "/api/v1/configmaps?fieldSelector=metadata.name%3Dx",
            Request("list", "/api/v1/configmaps", "", "configmaps", "", "", "x"),
        ),
        (
            "DELETE",
            "/apis/apps/v1/namespaces/a/deployments",
            Request(
                "deletecollection",
                "/apis/apps/v1/namespaces/a/deployments",
                "apps",
                "deployments",
                "",
                "a",
                "",
            ),
        ),
        (
            "PUT",
            "/apis/apps/v1/namespaces/a/deployments/d/status",
            Request(
                "update",
                "/apis/apps/v1/namespaces/a/deployments/d/status",
                "apps",
                "deployments",
                "status",
                "a",
                "d",
            ),
        ),
        (
            "GET",
            "/api/v1/namespaces/a",
            Request("get", "/api/v1/namespaces/a", "", "namespaces", "", "a", "a"),
        ),
        (
            "PUT",
            "/api/v1/namespaces/a/finalize",
            Request(
                "update", "/api/v1/namespaces/a/finalize", "", "namespaces", "finalize", "a", "a"
            ),
        ),
        ("GET", "/apis/apps/v1", Request("get", "/apis/apps/v1", resource_request=False)),
    ],
)
def test_http_requests_map_to_rbac_attributes(method: str, path: str, expected: Request) -> None:
    assert request_attributes(method, path) == expected
