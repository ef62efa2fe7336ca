"""Rule expansion over discovery: globs, version choice and docs/design.md §3 exclusions."""

from __future__ import annotations

import pytest

from ray_syncer.kube.client import ResourceInfo
from ray_syncer.kube.discovery import (
    expand_rule,
    glob_excluded,
    is_glob,
    match_rule,
    resolve_exact,
)

LW = frozenset({"get", "list", "watch", "create", "patch", "delete"})


def ri(
    group: str, version: str, kind: str, *, namespaced: bool = True, verbs: frozenset[str] = LW
) -> ResourceInfo:
    return ResourceInfo(group, version, kind, kind.lower() + "s", namespaced, verbs=verbs)


class FakeDiscovery:
    """A cluster's discovery documents, as KubeClient would return them."""

    def __init__(self, served: dict[str, dict[str, list[ResourceInfo]]]) -> None:
        self.served = served  # group -> version (preferred first) -> resources
        self.calls = 0

    async def server_groups(self) -> dict[str, list[str]]:
        return {g: list(vs) for g, vs in self.served.items()}

    async def resources(self, group: str, version: str) -> list[ResourceInfo]:
        self.calls += 1
        return list(self.served.get(group, {}).get(version, []))

    async def resolve(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        return next((r for r in await self.resources(group, version) if r.kind == kind), None)


CLUSTER = FakeDiscovery(
    {
        "": {
            "v1": [
                ri("", "v1", "ConfigMap"),
                ri("", "v1", "Secret"),
                ri("", "v1", "Namespace", namespaced=False),
                ri("", "v1", "Event"),
                ri("", "v1", "Endpoints"),
                ri("", "v1", "Pod"),
                ri("", "v1", "Binding", verbs=frozenset({"create"})),
                ri("", "v1", "ComponentStatus", namespaced=False, verbs=frozenset({"get", "list"})),
                ri("", "v1", "Node", namespaced=False),
                ri("", "v1", "PersistentVolume", namespaced=False),
                ri("", "v1", "ServiceAccount"),
            ]
        },
        "certificates.k8s.io": {
            "v1": [ri("certificates.k8s.io", "v1", "CertificateSigningRequest", namespaced=False)]
        },
        "apiregistration.k8s.io": {
            "v1": [ri("apiregistration.k8s.io", "v1", "APIService", namespaced=False)]
        },
        "storage.k8s.io": {
            "v1": [
                ri("storage.k8s.io", "v1", k, namespaced=False)
                for k in ("CSINode", "StorageClass", "VolumeAttachment")
            ]
        },
        "resource.k8s.io": {
            "v1": [ri("resource.k8s.io", "v1", "ResourceClaim")],
            "v1beta2": [
                ri("resource.k8s.io", "v1beta2", "ResourceClaim"),
                ri("resource.k8s.io", "v1beta2", "ResourceSlice", namespaced=False),
            ],
        },
        "flowcontrol.apiserver.k8s.io": {
            "v1": [
                ri("flowcontrol.apiserver.k8s.io", "v1", k, namespaced=False)
                for k in ("FlowSchema", "PriorityLevelConfiguration")
            ]
        },
        "widgets.example.com": {
            # Served in v1 without watch (say, an aggregated API's older version): a glob
            # takes the next version that can be watched.
            "v1": [ri("widgets.example.com", "v1", "Widget", verbs=frozenset({"get", "list"}))],
            "v1beta1": [ri("widgets.example.com", "v1beta1", "Widget")],
        },
        "apps": {
            "v1": [ri("apps", "v1", k) for k in ("Deployment", "ReplicaSet", "ControllerRevision")]
        },
        "batch": {"v1": [ri("batch", "v1", "Job"), ri("batch", "v1", "CronJob")]},
        "events.k8s.io": {"v1": [ri("events.k8s.io", "v1", "Event")]},
        "coordination.k8s.io": {"v1": [ri("coordination.k8s.io", "v1", "Lease")]},
        "discovery.k8s.io": {"v1": [ri("discovery.k8s.io", "v1", "EndpointSlice")]},
        "syncer.gkelabs.io": {"v1alpha1": [ri("syncer.gkelabs.io", "v1alpha1", "KRMSyncer")]},
        "storage.cnrm.cloud.google.com": {
            "v1beta1": [ri("storage.cnrm.cloud.google.com", "v1beta1", "StorageBucket")],
            "v1alpha1": [
                ri("storage.cnrm.cloud.google.com", "v1alpha1", "StorageBucket"),
                ri("storage.cnrm.cloud.google.com", "v1alpha1", "StorageNotification"),
            ],
        },
        "sql.cnrm.cloud.google.com": {
            "v1beta1": [ri("sql.cnrm.cloud.google.com", "v1beta1", "SQLInstance")]
        },
        "jobs.example.com": {"v1": [ri("jobs.example.com", "v1", "Job")]},
    }
)


def names(infos: list[ResourceInfo]) -> list[str]:
    return [f"{i.group or 'core'}/{i.version}/{i.kind}" for i in infos]


def test_is_glob() -> None:
    assert (
        is_glob("*") and is_glob("*.cnrm.cloud.google.com") and is_glob("v1?") and is_glob("[ab]")
    )
    assert not is_glob("") and not is_glob("apps") and not is_glob("ConfigMap")


async def test_glob_over_group_picks_preferred_version_once_per_kind() -> None:
    got = await expand_rule(CLUSTER, group="*.cnrm.cloud.google.com", version="*", kind="*")
    # StorageBucket is served in two versions: only the preferred one is synced.
    # StorageNotification exists only in v1alpha1, so that version is used for it.
    assert names(got) == [
        "sql.cnrm.cloud.google.com/v1beta1/SQLInstance",
        "storage.cnrm.cloud.google.com/v1beta1/StorageBucket",
        "storage.cnrm.cloud.google.com/v1alpha1/StorageNotification",
    ]


async def test_version_glob_restricts_versions() -> None:
    got = await expand_rule(
        CLUSTER, group="storage.cnrm.cloud.google.com", version="v1alpha*", kind="*"
    )
    assert names(got) == [
        "storage.cnrm.cloud.google.com/v1alpha1/StorageBucket",
        "storage.cnrm.cloud.google.com/v1alpha1/StorageNotification",
    ]


async def test_everything_glob_applies_design_exclusions() -> None:
    got = names(await expand_rule(CLUSTER, group="*", version="*", kind="*"))
    assert got == [
        "core/v1/ConfigMap",
        "core/v1/PersistentVolume",  # cluster-scoped, but not infrastructure
        "core/v1/Secret",
        "core/v1/ServiceAccount",
        "apps/v1/Deployment",
        "batch/v1/CronJob",
        "jobs.example.com/v1/Job",  # a CRD called Job in another group is not excluded
        "resource.k8s.io/v1/ResourceClaim",
        "sql.cnrm.cloud.google.com/v1beta1/SQLInstance",
        "storage.cnrm.cloud.google.com/v1beta1/StorageBucket",
        "storage.cnrm.cloud.google.com/v1alpha1/StorageNotification",
        "storage.k8s.io/v1/StorageClass",
        "widgets.example.com/v1beta1/Widget",
    ]


async def test_kind_glob_in_core() -> None:
    got = await expand_rule(CLUSTER, group="", version="v1", kind="*e*")
    assert names(got) == [
        "core/v1/PersistentVolume",
        "core/v1/Secret",
        "core/v1/ServiceAccount",
    ]  # Event, Endpoints, ComponentStatus, Namespace, Node excluded; case-sensitive


INFRASTRUCTURE = [
    ("", "Node"),
    ("", "Namespace"),
    ("", "ComponentStatus"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("apiregistration.k8s.io", "APIService"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("resource.k8s.io", "ResourceSlice"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
]


@pytest.mark.parametrize(("group", "kind"), INFRASTRUCTURE)
async def test_glob_never_expands_to_node_and_cluster_infrastructure(group: str, kind: str) -> None:
    for rule in [("*", "*", "*"), (group, "*", "*"), (group, "*", kind)]:
        got = await expand_rule(CLUSTER, group=rule[0], version=rule[1], kind=rule[2])
        assert (group, kind) not in [(i.group, i.kind) for i in got], rule
    # ...and the reason is one a person can read in status.expandedRules.
    (info,) = [i for i in await match_rule(CLUSTER, group=group, version="*", kind=kind)]
    assert glob_excluded(info) in (
        "node or cluster infrastructure",
        "the syncer creates destination namespaces as it needs them",
    )


def test_exclusion_matches_any_version_and_every_flowcontrol_kind() -> None:
    for version in ("v1", "v1beta1", "v1alpha3", "v2"):
        assert glob_excluded(ri("resource.k8s.io", version, "ResourceSlice", namespaced=False))
        assert glob_excluded(ri("flowcontrol.apiserver.k8s.io", version, "SomethingNew"))
    assert glob_excluded(ri("resource.k8s.io", "v1", "ResourceClaim")) is None
    assert glob_excluded(ri("nodes.example.com", "v1", "Node", namespaced=False)) is None


async def test_glob_naming_namespaces_expands_to_namespaced_kinds_only() -> None:
    got = names(await expand_rule(CLUSTER, group="*", version="*", kind="*", namespaced_only=True))
    assert "core/v1/PersistentVolume" not in got and "storage.k8s.io/v1/StorageClass" not in got
    assert "core/v1/ConfigMap" in got and "resource.k8s.io/v1/ResourceClaim" in got
    pv = ri("", "v1", "PersistentVolume", namespaced=False)
    assert glob_excluded(pv) is None
    assert glob_excluded(pv, namespaced_only=True) == "cluster-scoped, and the rule names namespaces"
    # An explicit rule is not a glob: it resolves whatever it names.
    assert names(
        await expand_rule(CLUSTER, group="", version="v1", kind="Node", namespaced_only=True)
    ) == ["core/v1/Node"]


async def test_match_rule_keeps_excluded_kinds_for_the_report() -> None:
    got = names(await match_rule(CLUSTER, group="", version="v1", kind="*"))
    assert got == [
        "core/v1/Binding", "core/v1/ComponentStatus", "core/v1/ConfigMap", "core/v1/Endpoints",
        "core/v1/Event", "core/v1/Namespace", "core/v1/Node", "core/v1/PersistentVolume",
        "core/v1/Pod", "core/v1/Secret", "core/v1/ServiceAccount",
    ]
    # One version per kind: the first a glob may use, not the first served.
    assert names(await match_rule(CLUSTER, group="widgets.example.com", version="*", kind="*")) == [
        "widgets.example.com/v1beta1/Widget"
    ]


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("", "Pod"),
        ("", "Event"),
        ("batch", "Job"),
        ("syncer.gkelabs.io", "KRMSyncer"),
        ("coordination.k8s.io", "Lease"),
        ("", "Binding"),
        *INFRASTRUCTURE,
    ],
)
async def test_explicit_rule_resolves_any_kind(group: str, kind: str) -> None:
    version = {"syncer.gkelabs.io": "v1alpha1", "resource.k8s.io": "v1beta2"}.get(group, "v1")
    got = await expand_rule(CLUSTER, group=group, version=version, kind=kind)
    assert [(i.group, i.kind) for i in got] == [(group, kind)]
    assert glob_excluded(got[0]) is not None  # ...even though a glob would skip it


async def test_explicit_rule_not_served_is_empty() -> None:
    assert await expand_rule(CLUSTER, group="apps", version="v1beta1", kind="Deployment") == []
    assert await resolve_exact(CLUSTER, group="nope.io", version="v1", kind="X") is None


async def test_glob_matching_nothing_is_empty() -> None:
    assert await expand_rule(CLUSTER, group="*.nothing.io", version="*", kind="*") == []
