"""Broken specs: each gives Ready=False InvalidSpec with the exact message, a Warning Event, no writes.

The strict CRD (on the destination server) is asked too, by a dry-run create:
where the schema can express the rule, it refuses the same object, so a user
sees the problem at ``kubectl apply`` time on a cluster with our CRD, and in
status on a cluster whose CRD is older or looser.
"""

from __future__ import annotations

from typing import Any

import pytest

from ray_syncer.kube.client import ApiError, KubeClient
from ray_syncer.operator.reconciler import KRMSYNCER_RES

from .world import (
    World,
    canary_alive,
    cm_rule,
    dest_ref,
    dest_writes,
    ensure_ns,
    put_secret,
    put_syncer,
    syncer_obj,
    unique,
    wait_condition,
    wait_warning,
)

D = dest_ref()
R = [cm_rule()]
SEL = {"group": "", "version": "v1", "kind": "ConfigMap"}
DURATION = "must be a duration such as 90s, 10m or 1h30m (units ns, us, ms, s, m, h)"

# id, spec, exact condition message, does the strict CRD refuse it too (None: not checked)
CASES: list[tuple[str, Any, str, bool | None]] = [
    ("empty-rules", {"rules": [], "destination": D}, "spec.rules: must list at least one rule", True),
    ("no-rules", {"destination": D}, "spec.rules: is required", True),
    (
        "missing-kind",
        {"rules": [{"group": "", "version": "v1"}], "destination": D},
        "spec.rules[0].kind: is required",
        True,
    ),
    (
        "missing-group",
        {"rules": [{"version": "v1", "kind": "ConfigMap"}], "destination": D},
        'spec.rules[0].group: is required (use "" for the core group)',
        True,
    ),
    (
        "destination-and-remote",
        {"rules": R, "destination": D, "remote": D},
        "spec.remote: must not be set together with spec.destination (remote is an alias of "
        "destination); set only one",
        None,
    ),
    ("neither", {"rules": R}, "spec.destination: is required (or its alias spec.remote)", None),
    (
        "invalid-kind-glob",
        {"rules": [{"group": "", "version": "v1", "kind": "Conf?gMap"}], "destination": D},
        "spec.rules[0].kind: must be a Kind such as ConfigMap, or a glob of letters, digits and "
        "'*', got 'Conf?gMap'",
        True,
    ),
    (
        "invalid-group-glob",
        {"rules": [{"group": "*.Example.com", "version": "v1", "kind": "*"}], "destination": D},
        "spec.rules[0].group: must be an API group (\"\" for core) or a glob of lowercase letters, "
        "digits, '-', '.' and '*', got '*.Example.com'",
        True,
    ),
    (
        "selector-operator",
        {
            "rules": [
                {
                    **SEL,
                    "labelSelector": {
                        "matchExpressions": [{"key": "app", "operator": "Maybe", "values": ["a"]}]
                    },
                }
            ],
            "destination": D,
        },
        "spec.rules[0].labelSelector.matchExpressions[0].operator: must be one of In, NotIn, "
        "Exists or DoesNotExist, got 'Maybe'",
        True,
    ),
    (
        "selector-in-without-values",
        {
            "rules": [
                {**SEL, "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}
            ],
            "destination": D,
        },
        "spec.rules[0].labelSelector.matchExpressions[0].values: must be non-empty when operator is In",
        None,
    ),
    (
        "selector-bad-key",
        {"rules": [{**SEL, "labelSelector": {"matchLabels": {"bad key!": "x"}}}], "destination": D},
        "spec.rules[0].labelSelector.matchLabels: key 'bad key!' is not a label key ([prefix/]name: "
        "name up to 63 alphanumerics, '-', '_' or '.'; prefix a DNS subdomain)",
        None,
    ),
    (
        "unknown-mode",
        {"rules": R, "destination": D, "mode": "mirror"},
        "spec.mode: must be one of push or pull, got 'mirror'",
        True,
    ),
    (
        "negative-resync",
        {"rules": R, "destination": D, "resyncPeriod": "-5m"},
        f"spec.resyncPeriod: {DURATION}, got '-5m'",
        True,
    ),
    (
        "garbage-resync",
        {"rules": R, "destination": D, "resyncPeriod": "soon"},
        f"spec.resyncPeriod: {DURATION}, got 'soon'",
        True,
    ),
    (
        "sub-second-resync",
        {"rules": R, "destination": D, "resyncPeriod": "500ms"},
        "spec.resyncPeriod: must be at least 1s, got '500ms'",
        None,
    ),
    (
        "numeric-resync",
        {"rules": R, "destination": D, "resyncPeriod": 600},
        "spec.resyncPeriod: must be a string, got 600",
        True,
    ),
    (
        # The models and the CRD cap rules at 100 (MAX_RULES / maxItems): a precise rejection.
        "thousand-rules",
        {
            "rules": [{"group": "", "version": "v1", "kind": f"K{i}"} for i in range(1000)],
            "destination": D,
        },
        "spec.rules: must have at most 100 rules",
        True,
    ),
    (
        "typo-field",
        {"rule": R, "destination": D},
        "spec.rules: is required; spec.rule: unknown field (did you mean 'rules'?)",
        None,
    ),
    (
        "suspend-not-bool",
        {"rules": R, "destination": D, "suspend": "yes"},
        "spec.suspend: must be true or false, got 'yes'",
        True,
    ),
    (
        "cross-namespace-secret",
        {
            "rules": R,
            "destination": {
                "clusterConfig": {"kubeConfigSecretRef": {"name": "dest", "namespace": "other"}}
            },
        },
        "spec.destination.clusterConfig.kubeConfigSecretRef.namespace: must be empty or the "
        "KRMSyncer's own namespace '{ns}', got 'other' (cross-namespace Secret references are not "
        "allowed)",
        None,
    ),
    (
        "unknown-conflict-policy",
        {"rules": R, "destination": D, "conflictPolicy": "Overwrite"},
        "spec.conflictPolicy: must be one of Skip or Adopt, got 'Overwrite'",
        True,
    ),
    (
        "go-transforms",
        {"rules": R, "destination": D, "transforms": []},
        "spec.transforms: not supported by ray-syncer (the Go KRMSyncer's field transforms); remove it",
        None,
    ),
    ("spec-not-object", [1, 2], "spec: must be an object, got [1, 2]", True),
]


@pytest.mark.parametrize(("spec", "message", "crd_rejects"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
async def test_invalid_spec(
    world: World,
    src: KubeClient,
    dst: KubeClient,
    spec: Any,
    message: str,
    crd_rejects: bool | None,
) -> None:
    ns = unique("spec")
    for c in (src, dst):
        await ensure_ns(c, ns)
    await put_secret(src, ns, "dest", {"kubeconfig": world.dest_kubeconfig()})
    obj = syncer_obj(ns, "bad", spec)
    await put_syncer(src, obj)
    message = message.replace("{ns}", ns)

    ready = await wait_condition(src, ns, "bad", "Ready", "False", "InvalidSpec")
    assert ready["message"] == message
    # Nothing runs for an invalid spec: the safe side is silence.
    suspended = await wait_condition(src, ns, "bad", "Suspended", "True", "InvalidSpec")
    assert suspended["message"] == "nothing is synced until the spec is fixed"
    event = await wait_warning(src, ns, "bad", "InvalidSpec")
    assert event["message"] == message
    assert not [s for s in world.op.running_shards() if s.startswith(f"{ns}/")]
    assert dest_writes(world.dst, ns) == []

    if crd_rejects is not None:
        try:
            await dst.request(
                "POST", KRMSYNCER_RES.path(namespace=ns), params={"dryRun": "All"}, body=obj
            )
            refused = False
        except ApiError as exc:
            refused = exc.status == 422
        assert refused is crd_rejects
    await canary_alive(world)


async def test_suspend_and_suspended_disagreeing_stay_suspended(
    world: World, src: KubeClient, dst: KubeClient
) -> None:
    ns = unique("susp")
    for c in (src, dst):
        await ensure_ns(c, ns)
    await put_secret(src, ns, "dest", {"kubeconfig": world.dest_kubeconfig()})
    await put_syncer(
        src,
        syncer_obj(ns, "bad", {"rules": [cm_rule(ns)], "destination": D, "suspend": True,
                               "suspended": False}),
    )
    ready = await wait_condition(src, ns, "bad", "Ready", "False", "InvalidSpec")
    assert ready["message"] == (
        "spec.suspended: disagrees with spec.suspend (suspend: true, suspended: false); set only "
        "one of them. Until fixed, the syncer stays suspended"
    )
    await wait_condition(src, ns, "bad", "Suspended", "True", "InvalidSpec")
    await wait_warning(src, ns, "bad", "InvalidSpec")
    assert dest_writes(world.dst, ns) == []
    await canary_alive(world)
