"""Shared KRMSyncer test inputs: a valid base object and tables of edits to it.

Each case is (id, edit) where ``edit(obj)`` mutates a deep copy of ``BASE``. The
agreement test runs every case through both the models and the CRD schema; the
model tests also check the exact error message of the invalid ones.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

BASE: dict[str, Any] = {
    "apiVersion": "syncer.gkelabs.io/v1alpha1",
    "kind": "KRMSyncer",
    "metadata": {"name": "base", "namespace": "default"},
    "spec": {
        "rules": [{"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": ["default"]}],
        "destination": {"clusterConfig": {"kubeConfigSecretRef": {"name": "remote-kubeconfig"}}},
    },
}

Edit = Callable[[dict[str, Any]], None]


def make(edit: Edit) -> dict[str, Any]:
    obj = copy.deepcopy(BASE)
    edit(obj)
    return obj


def spec(**fields: Any) -> Edit:
    def _edit(obj: dict[str, Any]) -> None:
        obj["spec"].update(fields)

    return _edit


def drop(*path: Any) -> Edit:
    def _edit(obj: dict[str, Any]) -> None:
        node = obj
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return _edit


def rule(**fields: Any) -> Edit:
    def _edit(obj: dict[str, Any]) -> None:
        obj["spec"]["rules"][0].update(fields)

    return _edit


def ref(**fields: Any) -> Edit:
    def _edit(obj: dict[str, Any]) -> None:
        obj["spec"]["destination"]["clusterConfig"]["kubeConfigSecretRef"].update(fields)

    return _edit


def to_remote(obj: dict[str, Any]) -> None:
    obj["spec"]["remote"] = obj["spec"].pop("destination")


def both_targets(obj: dict[str, Any]) -> None:
    obj["spec"]["remote"] = copy.deepcopy(obj["spec"]["destination"])


def selector(sel: Any) -> Edit:
    return rule(labelSelector=sel)


DEST = {"clusterConfig": {"kubeConfigSecretRef": {"name": "remote-kubeconfig"}}}

# Accepted by both the models and the CRD.
VALID: list[tuple[str, Edit]] = [
    ("base", lambda o: None),
    ("remote-alias", to_remote),
    ("suspend-true", spec(suspend=True)),
    ("suspended-true", spec(suspended=True)),
    ("both-agree-true", spec(suspend=True, suspended=True)),
    ("both-agree-false", spec(suspend=False, suspended=False)),
    ("null-suspend-is-absent", spec(suspend=None, suspended=True)),
    ("null-remote-is-absent", spec(remote=None)),
    ("pull", spec(mode="pull")),
    ("core-group-all-namespaces", drop("spec", "rules", 0, "namespaces")),
    ("empty-namespaces", rule(namespaces=[])),
    ("glob-everything", rule(group="*", version="*", kind="*")),
    ("glob-suffix-group", rule(group="*.cnrm.cloud.google.com", version="v1beta1", kind="*")),
    ("glob-prefix-kind", rule(group="apps", version="v1", kind="Deploy*")),
    ("sync-fields", rule(syncFields=["spec", "status", "metadata.labels"])),
    ("sync-fields-empty", rule(syncFields=[])),
    ("all-rule-options", rule(includeOwned=True, syncStatus=True, immutablePolicy="Report")),
    ("policies", spec(conflictPolicy="Adopt", deletionPolicy="Orphan")),
    ("resync-1h30m", spec(resyncPeriod="1h30m")),
    ("resync-fraction", spec(resyncPeriod="1.5h")),
    ("resync-min", spec(resyncPeriod="1s")),
    ("resync-ms-sum", spec(resyncPeriod="1s500ms")),
    ("rpo-target", spec(rpoTarget="30s")),
    ("rpo-target-minutes", spec(rpoTarget="5m")),
    ("selector-empty", selector({})),
    ("selector-labels", selector({"matchLabels": {"app.kubernetes.io/name": "shop", "tier": ""}})),
    (
        "selector-expressions",
        selector(
            {
                "matchExpressions": [
                    {"key": "env", "operator": "NotIn", "values": ["dev", "test"]},
                    {"key": "example.com/owner", "operator": "Exists"},
                    {"key": "skip", "operator": "DoesNotExist", "values": []},
                ]
            }
        ),
    ),
    ("secret-key", ref(key="config.yaml")),
    ("secret-namespace-own", ref(namespace="default")),
    ("dest-namespace", lambda o: o["spec"]["destination"].update(namespace="standby")),
    (
        "two-rules",
        lambda o: o["spec"]["rules"].append(
            {"group": "apps", "version": "v1", "kind": "Deployment"}
        ),
    ),
    (
        "server-metadata",
        lambda o: o["metadata"].update(uid="1", resourceVersion="9", managedFields=[{}]),
    ),
    ("status-present", lambda o: o.update(status={"conditions": [], "objects": 3})),
]

# Rejected by both. The third element is the model's message (exact, or a prefix
# when it ends with "...").
INVALID: list[tuple[str, Edit, str]] = [
    (
        "suspend-disagree",
        spec(suspend=True, suspended=False),
        "spec.suspended: disagrees with spec.suspend (suspend: true, suspended: false); set only "
        "one of them. Until fixed, the syncer stays suspended",
    ),
    (
        "destination-and-remote",
        both_targets,
        "spec.remote: must not be set together with spec.destination (remote is an alias of "
        "destination); set only one",
    ),
    (
        "neither-destination-nor-remote",
        drop("spec", "destination"),
        "spec.destination: is required (or its alias spec.remote)",
    ),
    ("rules-empty", spec(rules=[]), "spec.rules: must list at least one rule"),
    ("rules-missing", drop("spec", "rules"), "spec.rules: is required"),
    (
        "rules-not-a-list",
        spec(rules={"group": ""}),
        "spec.rules: must be a list, got {'group': ''}",
    ),
    ("kind-empty", rule(kind=""), "spec.rules[0].kind: must not be empty"),
    ("version-missing", drop("spec", "rules", 0, "version"), "spec.rules[0].version: is required"),
    (
        "group-missing",
        drop("spec", "rules", 0, "group"),
        'spec.rules[0].group: is required (use "" for the core group)',
    ),
    (
        "group-space",
        rule(group="apps v1"),
        "spec.rules[0].group: must be an API group (...) or a glob...",
    ),
    ("group-regex", rule(group=".*"), "spec.rules[0].group: must be an API group..."),
    ("group-uppercase", rule(group="Apps"), "spec.rules[0].group: must be an API group..."),
    (
        "kind-question-mark",
        rule(kind="Config?ap"),
        "spec.rules[0].kind: must be a Kind such as ConfigMap...",
    ),
    (
        "kind-bracket",
        rule(kind="[A-Z]*"),
        "spec.rules[0].kind: must be a Kind such as ConfigMap...",
    ),
    (
        "kind-plural-dot",
        rule(kind="configmaps.v1"),
        "spec.rules[0].kind: must be a Kind such as ConfigMap...",
    ),
    ("version-regex", rule(version="v1.*"), "spec.rules[0].version: must be an API version..."),
    ("mode-case", spec(mode="Push"), "spec.mode: must be one of push or pull, got 'Push'"),
    (
        "conflict-policy",
        spec(conflictPolicy="Overwrite"),
        "spec.conflictPolicy: must be one of Skip or Adopt, got 'Overwrite'",
    ),
    (
        "deletion-policy",
        spec(deletionPolicy="Retain"),
        "spec.deletionPolicy: must be one of Delete or Orphan, got 'Retain'",
    ),
    (
        "immutable-policy",
        rule(immutablePolicy="Replace"),
        "spec.rules[0].immutablePolicy: must be one of Recreate or Report, got 'Replace'",
    ),
    (
        "resync-no-unit",
        spec(resyncPeriod="600"),
        "spec.resyncPeriod: must be a duration such as 90s, 10m or 1h30m (units ns, us, ms, s, m, h), got '600'",
    ),
    ("resync-zero", spec(resyncPeriod="0s"), "spec.resyncPeriod: must be at least 1s, got '0s'"),
    (
        "resync-sub-second",
        spec(resyncPeriod="500ms"),
        "spec.resyncPeriod: must be at least 1s, got '500ms'",
    ),
    (
        "resync-negative",
        spec(resyncPeriod="-5m"),
        "spec.resyncPeriod: must be a duration such as...",
    ),
    ("resync-number", spec(resyncPeriod=600), "spec.resyncPeriod: must be a string, got 600"),
    (
        "rpo-no-unit",
        spec(rpoTarget="30"),
        "spec.rpoTarget: must be a duration such as 90s, 10m or 1h30m (units ns, us, ms, s, m, h), got '30'",
    ),
    ("rpo-sub-second", spec(rpoTarget="500ms"), "spec.rpoTarget: must be at least 1s, got '500ms'"),
    ("suspend-string", spec(suspend="true"), "spec.suspend: must be true or false, got 'true'"),
    (
        "include-owned-string",
        rule(includeOwned="yes"),
        "spec.rules[0].includeOwned: must be true or false, got 'yes'",
    ),
    (
        "unknown-spec-field",
        spec(suspnd=True),
        "spec.suspnd: unknown field (did you mean 'suspend'?)",
    ),
    (
        "go-transforms",
        rule(transforms=[{"fieldTransform": {"source": "a", "destination": "b"}}]),
        "spec.rules[0].transforms: not supported by ray-syncer (the Go KRMSyncer's field transforms); remove it",
    ),
    (
        "in-without-values",
        selector({"matchExpressions": [{"key": "a", "operator": "In"}]}),
        "spec.rules[0].labelSelector.matchExpressions[0].values: must be non-empty when operator is In",
    ),
    (
        "exists-with-values",
        selector({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        "spec.rules[0].labelSelector.matchExpressions[0].values: must be empty when operator is Exists",
    ),
    (
        "operator-unknown",
        selector({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}),
        "spec.rules[0].labelSelector.matchExpressions[0].operator: must be one of In, NotIn, Exists or DoesNotExist, got 'Equals'",
    ),
    (
        "expression-key-invalid",
        selector({"matchExpressions": [{"key": "a b", "operator": "Exists"}]}),
        "spec.rules[0].labelSelector.matchExpressions[0].key: must be a label key...",
    ),
    (
        "expression-key-prefix-too-long",
        selector({"matchExpressions": [{"key": "a" * 254 + "/x", "operator": "Exists"}]}),
        "spec.rules[0].labelSelector.matchExpressions[0].key: label key prefix must be at most 253 characters",
    ),
    (
        "expression-value-invalid",
        selector({"matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", "b c"]}]}),
        "spec.rules[0].labelSelector.matchExpressions[0].values[1]: must be a label value...",
    ),
    (
        "match-labels-value-invalid",
        selector({"matchLabels": {"app": "a b"}}),
        "spec.rules[0].labelSelector.matchLabels: value of 'app': must be a label value...",
    ),
    (
        "namespace-uppercase",
        rule(namespaces=["Default"]),
        "spec.rules[0].namespaces[0]: must be a DNS label...",
    ),
    (
        "namespace-empty-string",
        rule(namespaces=[""]),
        "spec.rules[0].namespaces[0]: must not be empty",
    ),
    (
        "namespace-duplicate",
        rule(namespaces=["a", "a"]),
        "spec.rules[0].namespaces[1]: duplicate value 'a'",
    ),
    (
        "sync-fields-bad-path",
        rule(syncFields=["spec..x"]),
        "spec.rules[0].syncFields[0]: must be a dotted field path...",
    ),
    (
        "secret-name-missing",
        ref(name=None),
        "spec.destination.clusterConfig.kubeConfigSecretRef.name: is required",
    ),
    (
        "secret-key-slash",
        ref(key="a/b"),
        "spec.destination.clusterConfig.kubeConfigSecretRef.key: must be a Secret data key...",
    ),
    ("cluster-config-missing", spec(destination={}), "spec.destination.clusterConfig: is required"),
    (
        "dest-namespace-invalid",
        lambda o: o["spec"]["destination"].update(namespace="Standby_1"),
        "spec.destination.namespace: must be a DNS label...",
    ),
    ("spec-missing", drop("spec"), "spec: is required"),
    ("spec-typo", lambda o: o.update(sepc=o.pop("spec")), "sepc: unknown field (did you mean 'spec'?)"),
    ("spec-not-object", lambda o: o.update(spec=["x"]), "spec: must be an object, got ['x']"),
]

# Rules only the models can check: CEL cannot see metadata.namespace, and
# validating map keys in CEL would blow the API server's cost budget. The CRD
# accepts these, the operator rejects them with the message shown.
MODEL_ONLY: list[tuple[str, Edit, str]] = [
    (
        "match-labels-key-invalid",
        selector({"matchLabels": {"a b": "x"}}),
        "spec.rules[0].labelSelector.matchLabels: key 'a b' is not a label key...",
    ),
    (
        "secret-namespace-other",
        ref(namespace="kube-system"),
        "spec.destination.clusterConfig.kubeConfigSecretRef.namespace: must be empty or the "
        "KRMSyncer's own namespace 'default', got 'kube-system' (cross-namespace Secret "
        "references are not allowed)",
    ),
]


def matches(message: str, expected: str) -> bool:
    if expected.endswith("..."):
        head = expected[:-3]
        if "(...)" in head:
            head = head.split("(...)")[0]
        return message.startswith(head)
    return message == expected
