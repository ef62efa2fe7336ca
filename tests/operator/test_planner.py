"""The planner: rules x kinds x namespaces -> shard specs; tenancy; glob lines for status."""

from __future__ import annotations

from typing import Any

from ray_syncer.api.parse import parse_krmsyncer
from ray_syncer.kube.client import ResourceInfo
from ray_syncer.operator.planner import Tenancy, expand_rules, plan_syncer, revision

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", True, verbs=frozenset({"list", "watch"}))
ING = ResourceInfo(
    "networking.k8s.io", "v1", "Ingress", "ingresses", True, verbs=frozenset({"list", "watch"})
)
NSK = ResourceInfo("", "v1", "Namespace", "namespaces", False, verbs=frozenset({"list", "watch"}))
NODE = ResourceInfo("", "v1", "Node", "nodes", False, verbs=frozenset({"list", "watch"}))
PV = ResourceInfo(
    "", "v1", "PersistentVolume", "persistentvolumes", False, verbs=frozenset({"list", "watch"})
)
SA = ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", True, verbs=frozenset({"list", "watch"}))
POD = ResourceInfo("", "v1", "Pod", "pods", True, verbs=frozenset({"list", "watch"}))
BINDING = ResourceInfo("", "v1", "Binding", "bindings", True, verbs=frozenset({"create"}))


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


def test_glob_naming_namespaces_stays_in_them() -> None:
    # The issue's rule: it used to sync Namespace (and would have synced Node) cluster-wide.
    s = syncer(rules=[{"group": "", "version": "v1", "kind": "*", "namespaces": ["shop"]}])
    plan = plan_syncer(s, {0: [BINDING, CM, NSK, NODE, PV, POD, SA]})
    assert [x.shard_id for x in plan.shards] == [
        "team/s/core/ConfigMap/shop",
        "team/s/core/ServiceAccount/shop",
    ]
    assert plan.expansions == [
        "rules[0] v1/* -> 2 kind(s): ConfigMap, ServiceAccount; skipped: Binding (lacks list/watch); "
        "Namespace (the syncer creates destination namespaces as it needs them); "
        "Node (node or cluster infrastructure); "
        "PersistentVolume (cluster-scoped, and the rule names namespaces); "
        "Pod (made by the destination's own controllers)"
    ]


def test_glob_over_all_namespaces_keeps_cluster_scoped_kinds_but_not_infrastructure() -> None:
    s = syncer(rules=[{"group": "", "version": "v1", "kind": "*"}])
    plan = plan_syncer(s, {0: [CM, NSK, NODE, PV]})
    assert [x.shard_id for x in plan.shards] == [
        "team/s/core/ConfigMap/_all",
        "team/s/core/PersistentVolume/_all",
    ]
    assert "skipped: Namespace (" in plan.expansions[0]
    assert "Node (node or cluster infrastructure)" in plan.expansions[0]


def test_explicit_rules_may_name_what_globs_skip() -> None:
    s = syncer(
        rules=[
            {"group": "", "version": "v1", "kind": "Node", "namespaces": ["shop"]},
            {"group": "", "version": "v1", "kind": "PersistentVolume", "namespaces": ["shop"]},
        ]
    )
    plan = plan_syncer(s, {0: [NODE], 1: [PV]})
    assert [x.shard_id for x in plan.shards] == [
        "team/s/core/Node/_all",
        "team/s/core/PersistentVolume/_all",
    ]
    assert plan.expansions == []


def test_skipped_kinds_are_bounded_in_status() -> None:
    many = [
        ResourceInfo("flowcontrol.apiserver.k8s.io", "v1", f"K{i:02}", f"k{i}", False,
                     verbs=frozenset({"list", "watch"}))
        for i in range(20)
    ]
    s = syncer(rules=[{"group": "*", "version": "*", "kind": "*"}])
    (line,) = plan_syncer(s, {0: [CM, *many]}).expansions
    assert line.startswith("rules[0] */*/* -> 1 kind(s): ConfigMap; skipped: K00.flowcontrol")
    assert line.endswith("K11.flowcontrol.apiserver.k8s.io (node or cluster infrastructure) "
                         "and 8 more")


async def test_expand_rules_then_plan_through_discovery() -> None:
    """The wiring: discovery reports what a glob matches; the plan skips and says why."""

    class Discovery:
        async def server_groups(self) -> dict[str, list[str]]:
            return {"": ["v1"]}

        async def resources(self, group: str, version: str) -> list[ResourceInfo]:
            return [CM, NSK, NODE, SA]

        async def resolve(self, group: str, version: str, kind: str) -> ResourceInfo | None:
            return next((r for r in [CM, NSK, NODE, SA] if r.kind == kind), None)

    s = syncer(
        rules=[
            {"group": "", "version": "v1", "kind": "*", "namespaces": ["shop"]},
            {"group": "", "version": "v1", "kind": "Namespace"},
        ]
    )
    plan = plan_syncer(s, await expand_rules(Discovery(), s))
    assert [x.shard_id for x in plan.shards] == [
        "team/s/core/ConfigMap/shop",
        "team/s/core/ServiceAccount/shop",
        "team/s/core/Namespace/_all",
    ]
    assert "Namespace (" in plan.expansions[0] and "Node (" in plan.expansions[0]


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
