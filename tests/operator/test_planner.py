"""The planner: rules x kinds x namespaces -> shard specs; tenancy; glob lines for status."""

from __future__ import annotations

from typing import Any

from ray_syncer.api.models import parse_krmsyncer
from ray_syncer.kube.client import ResourceInfo
from ray_syncer.operator.planner import Tenancy, plan_syncer, revision

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", True, verbs=frozenset({"list", "watch"}))
ING = ResourceInfo(
    "networking.k8s.io", "v1", "Ingress", "ingresses", True, verbs=frozenset({"list", "watch"})
)
NSK = ResourceInfo("", "v1", "Namespace", "namespaces", False, verbs=frozenset({"list", "watch"}))


def syncer(*, namespace: str = "team", **spec: Any) -> Any:
    body: dict[str, Any] = {
        "destination": {"clusterConfig": {"kubeConfigSecretRef": {"name": "dest"}}},
        "rules": [{"group": "", "version": "v1", "kind": "ConfigMap"}],
    }
    body.update(spec)
    return parse_krmsyncer(
        {
            "apiVersion": "syncer.gkelabs.io/v1alpha1",
            "kind": "KRMSyncer",
            "metadata": {"name": "s", "namespace": namespace, "generation": 1},
            "spec": body,
        }
    )


def test_one_shard_per_rule_kind_and_namespace() -> None:
    s = syncer(
        rules=[
            {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": ["a", "b"]},
            {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
        ]
    )
    plan = plan_syncer(s, {0: [CM], 1: [ING]}, source_cluster="prod")
    assert [x.shard_id for x in plan.shards] == [
        "team/s/core/ConfigMap/a",
        "team/s/core/ConfigMap/b",
        "team/s/networking.k8s.io/Ingress/_all",
    ]
    assert all(x.source_cluster == "prod" for x in plan.shards)
    assert plan.refused is None


def test_rule_options_reach_the_shard() -> None:
    s = syncer(
        destination={
            "clusterConfig": {"kubeConfigSecretRef": {"name": "dest"}},
            "namespace": "mirror",
        },
        conflictPolicy="Adopt",
        deletionPolicy="Orphan",
        resyncPeriod="90s",
        rules=[
            {
                "group": "",
                "version": "v1",
                "kind": "ConfigMap",
                "labelSelector": {"matchLabels": {"app": "x"}},
                "syncFields": ["data", "status"],
                "includeOwned": True,
            }
        ],
    )
    (shard,) = plan_syncer(s, {0: [CM]}).shards
    assert shard.dest_namespace == "mirror"
    assert shard.label_selector == "app=x"
    assert shard.sync_fields == ("data", "status")
    assert shard.sync_status is True
    assert shard.include_owned is True
    assert (shard.conflict_policy, shard.deletion_policy) == ("Adopt", "Orphan")
    assert shard.resync_period_s == 90.0


def test_cluster_scoped_kinds_ignore_namespaces_and_mapping() -> None:
    s = syncer(rules=[{"group": "", "version": "v1", "kind": "Namespace", "namespaces": ["a"]}])
    (shard,) = plan_syncer(s, {0: [NSK]}).shards
    assert shard.source_namespace is None and shard.dest_namespace is None


def test_glob_expansion_is_described_and_overlaps_keep_the_first_rule() -> None:
    s = syncer(
        rules=[
            {"group": "*", "version": "v1", "kind": "*"},
            {"group": "", "version": "v1", "kind": "ConfigMap"},
        ]
    )
    plan = plan_syncer(s, {0: [CM, ING], 1: [CM]})
    assert [x.kind for x in plan.shards] == ["ConfigMap", "Ingress"]
    assert (
        plan.expansions[0] == "rules[0] */v1/* -> 2 kind(s): ConfigMap, Ingress.networking.k8s.io"
    )
    assert "rules[0] wins" in plan.expansions[1]


def test_unserved_explicit_rule_is_reported_not_fatal() -> None:
    plan = plan_syncer(syncer(), {0: []})
    assert plan.shards == []
    assert plan.expansions == ["rules[0] v1/ConfigMap -> not served by the source cluster"]


def test_restricted_tenancy() -> None:
    tenancy = Tenancy(restrict_to_own_namespace=True, tenant_namespaces=frozenset({"platform"}))
    # No namespaces: narrowed to the syncer's own namespace.
    (shard,) = plan_syncer(syncer(), {0: [CM]}, tenancy=tenancy).shards
    assert shard.source_namespace == "team"
    # Another namespace: refused with a reason naming it.
    s = syncer(rules=[{"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": ["prod"]}])
    plan = plan_syncer(s, {0: [CM]}, tenancy=tenancy)
    assert plan.shards == [] and plan.refused is not None
    assert plan.refused.reason == "NamespaceNotAllowed" and "prod" in plan.refused.message
    # Cluster-scoped explicit rule: refused; in a glob: skipped.
    s = syncer(rules=[{"group": "", "version": "v1", "kind": "Namespace"}])
    assert plan_syncer(s, {0: [NSK]}, tenancy=tenancy).refused.reason == "ClusterScopedNotAllowed"  # type: ignore[union-attr]
    s = syncer(rules=[{"group": "", "version": "v1", "kind": "*"}])
    assert [x.kind for x in plan_syncer(s, {0: [CM, NSK]}, tenancy=tenancy).shards] == ["ConfigMap"]
    # A tenant namespace may sync anywhere.
    s = syncer(
        namespace="platform",
        rules=[{"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": ["prod"]}],
    )
    assert [x.source_namespace for x in plan_syncer(s, {0: [CM]}, tenancy=tenancy).shards] == [
        "prod"
    ]
    # Unrestricted (the default): anything goes, as in the Go KRMSyncer.
    s = syncer(rules=[{"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": ["prod"]}])
    assert plan_syncer(s, {0: [CM]}).refused is None


def test_revision_changes_with_spec_and_credentials_only() -> None:
    (a,) = plan_syncer(syncer(), {0: [CM]}).shards
    (b,) = plan_syncer(syncer(resyncPeriod="5m"), {0: [CM]}).shards
    assert revision(a, credentials="k1") == revision(a, credentials="k1")
    assert revision(a, credentials="k1") != revision(a, credentials="k2")
    assert revision(a, credentials="k1") != revision(b, credentials="k1")
