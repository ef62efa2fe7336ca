"""Rule expansion over discovery: globs, version choice and DESIGN.md §3 exclusions."""

from __future__ import annotations

import pytest

from ray_syncer.kube.client import ResourceInfo
from ray_syncer.kube.discovery import expand_rule, glob_excluded, is_glob, resolve_exact

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
            ]
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
        "core/v1/Namespace",
        "core/v1/Secret",
        "apps/v1/Deployment",
        "batch/v1/CronJob",
        "jobs.example.com/v1/Job",  # a CRD called Job in another group is not excluded
        "sql.cnrm.cloud.google.com/v1beta1/SQLInstance",
        "storage.cnrm.cloud.google.com/v1beta1/StorageBucket",
        "storage.cnrm.cloud.google.com/v1alpha1/StorageNotification",
    ]


async def test_kind_glob_in_core() -> None:
    got = await expand_rule(CLUSTER, group="", version="v1", kind="*e*")
    assert names(got) == [
        "core/v1/Namespace",
        "core/v1/Secret",
    ]  # Event, Endpoints, ComponentStatus excluded; case-sensitive


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("", "Pod"),
        ("", "Event"),
        ("batch", "Job"),
        ("syncer.gkelabs.io", "KRMSyncer"),
        ("coordination.k8s.io", "Lease"),
        ("", "Binding"),
    ],
)
async def test_explicit_rule_resolves_any_kind(group: str, kind: str) -> None:
    version = "v1alpha1" if group == "syncer.gkelabs.io" else "v1"
    got = await expand_rule(CLUSTER, group=group, version=version, kind=kind)
    assert [(i.group, i.kind) for i in got] == [(group, kind)]
    assert glob_excluded(got[0]) is not None  # ...even though a glob would skip it


async def test_explicit_rule_not_served_is_empty() -> None:
    assert await expand_rule(CLUSTER, group="apps", version="v1beta1", kind="Deployment") == []
    assert await resolve_exact(CLUSTER, group="nope.io", version="v1", kind="X") is None


async def test_glob_matching_nothing_is_empty() -> None:
    assert await expand_rule(CLUSTER, group="*.nothing.io", version="*", kind="*") == []
