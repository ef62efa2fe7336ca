"""The pure transform: allowlist-then-strip, syncFields, exclusions, ownership, determinism."""

from __future__ import annotations

import copy
from typing import Any

from ray_syncer.engine.spec import ShardSpec
from ray_syncer.engine.transform import (
    ANN_CONTENT_HASH,
    ANN_SOURCE_NAME,
    ANN_SOURCE_NAMESPACE,
    ANN_SOURCE_UID,
    MANAGED_BY_LABEL,
    canonical_bytes,
    exclusion_reason,
    managed_by_value,
    owned_by,
    status_body,
    transform,
)

SPEC = ShardSpec(syncer_namespace="ops", syncer_name="dr", group="", version="v1", kind="ConfigMap")
MB = managed_by_value("ops", "dr")


def cm(**extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "app",
            "namespace": "prod",
            "uid": "u-1",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "managedFields": [{"manager": "kubectl"}],
            "ownerReferences": [{"kind": "X", "name": "y", "uid": "z"}],
            "finalizers": ["f"],
            "generateName": "app-",
            "selfLink": "/x",
            "labels": {"app": "a"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "keep": "me",
            },
        },
        "data": {"b": "2", "a": "1"},
    }
    obj.update(extra)
    return obj


def run(obj: dict[str, Any], spec: ShardSpec = SPEC, *, status_sub: bool = False):
    return transform(obj, spec=spec, managed_by=MB, namespaced=True, status_subresource=status_sub)


def test_server_managed_metadata_is_never_copied() -> None:
    out = run(cm()).body
    meta = out["metadata"]
    assert set(meta) == {"name", "namespace", "labels", "annotations"}
    assert "kubectl.kubernetes.io/last-applied-configuration" not in meta["annotations"]
    assert meta["annotations"]["keep"] == "me"
    assert out["data"] == {"a": "1", "b": "2"}
    assert out["apiVersion"] == "v1" and out["kind"] == "ConfigMap"


def test_ownership_label_and_annotations() -> None:
    d = run(cm())
    meta = d.body["metadata"]
    assert meta["labels"][MANAGED_BY_LABEL] == "ops.dr"
    assert meta["labels"]["app"] == "a"
    ann = meta["annotations"]
    assert ann[ANN_SOURCE_NAMESPACE] == "prod"
    assert ann[ANN_SOURCE_NAME] == "app"
    assert ann[ANN_SOURCE_UID] == "u-1"
    assert int(ann[ANN_CONTENT_HASH], 16) == d.hash
    assert owned_by(d.body, spec=SPEC, managed_by=MB)
    assert not owned_by(d.body, spec=SPEC, managed_by="other.x")


def test_long_syncer_name_gives_a_valid_hashed_label() -> None:
    value = managed_by_value("a" * 40, "b" * 60)
    assert len(value) <= 63 and value[0].isalnum() and value[-1].isalnum()
    assert value == managed_by_value("a" * 40, "b" * 60)
    assert value != managed_by_value("a" * 40, "b" * 59)


def test_deterministic_byte_identical_and_source_untouched() -> None:
    src = cm()
    before = copy.deepcopy(src)
    a = run(src)
    shuffled = cm()
    shuffled["data"] = {"a": "1", "b": "2"}
    shuffled["metadata"]["resourceVersion"] = "99"  # server fields do not matter
    b = run(shuffled)
    assert canonical_bytes(a.body) == canonical_bytes(b.body)
    assert a.hash == b.hash
    assert src == before


def test_content_change_changes_hash() -> None:
    assert run(cm()).hash != run(cm(data={"a": "1"})).hash


def test_namespace_mapping() -> None:
    spec = ShardSpec(
        syncer_namespace="ops", syncer_name="dr", group="", version="v1", kind="ConfigMap",
        dest_namespace="dr-copy",
    )
    d = run(cm(), spec)
    assert d.namespace == "dr-copy" and d.key == "dr-copy/app"
    assert d.body["metadata"]["annotations"][ANN_SOURCE_NAMESPACE] == "prod"


def test_sync_fields_copies_only_listed_paths_plus_identity() -> None:
    spec = ShardSpec(
        syncer_namespace="ops", syncer_name="dr", group="apps", version="v1", kind="Deployment",
        sync_fields=("spec.replicas", "spec.missing.path"),
    )
    src = {
        "metadata": {"name": "web", "namespace": "prod", "labels": {"x": "y"}},
        "spec": {"replicas": 3, "template": {"spec": {}}},
        "status": {"ready": 1},
    }
    d = run(src, spec)
    assert d.body["spec"] == {"replicas": 3}
    assert "status" not in d.body and d.status is None
    assert d.body["metadata"]["labels"]["x"] == "y"


def test_status_in_sync_fields_means_status_sync() -> None:
    spec = ShardSpec(
        syncer_namespace="ops", syncer_name="dr", group="e.io", version="v1", kind="Widget",
        sync_fields=("spec", "status"),
    )
    src = {"metadata": {"name": "w", "namespace": "p"}, "spec": {"a": 1}, "status": {"ok": True}}
    d = run(src, spec, status_sub=True)
    assert d.status == {"ok": True} and "status" not in d.body
    assert status_body(d) == {
        "apiVersion": "e.io/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "p"}, "status": {"ok": True},
    }


def test_status_is_dropped_unless_sync_status_and_inline_without_subresource() -> None:
    src = {"metadata": {"name": "w", "namespace": "p"}, "spec": {"a": 1}, "status": {"ok": True}}
    base = dict(syncer_namespace="ops", syncer_name="dr", group="e.io", version="v1", kind="W")
    assert "status" not in run(src, ShardSpec(**base)).body  # type: ignore[arg-type]
    on = ShardSpec(**base, sync_status=True)  # type: ignore[arg-type]
    assert run(src, on, status_sub=False).body["status"] == {"ok": True}
    assert run(src, on).hash != run(dict(src, status={"ok": False}), on).hash


def test_service_allocated_fields_stripped() -> None:
    spec = ShardSpec(syncer_namespace="o", syncer_name="d", group="", version="v1", kind="Service")
    src = {
        "metadata": {"name": "s", "namespace": "p"},
        "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "healthCheckNodePort": 3,
                 "ports": [{"port": 80}]},
    }
    assert run(src, spec).body["spec"] == {"ports": [{"port": 80}]}
    assert src["spec"]["clusterIP"] == "10.0.0.1"  # source untouched


def test_pvc_volume_name_and_bind_annotations_stripped() -> None:
    spec = ShardSpec(syncer_namespace="o", syncer_name="d", group="", version="v1",
                     kind="PersistentVolumeClaim")
    src = {
        "metadata": {"name": "c", "namespace": "p", "annotations": {
            "pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
            "keep": "1"}},
        "spec": {"volumeName": "pv-1", "resources": {"requests": {"storage": "1Gi"}}},
    }
    body = run(src, spec).body
    assert "volumeName" not in body["spec"]
    assert "pv.kubernetes.io/bind-completed" not in body["metadata"]["annotations"]
    assert body["metadata"]["annotations"]["keep"] == "1"


def test_job_controller_uid_selector_and_labels_stripped() -> None:
    spec = ShardSpec(syncer_namespace="o", syncer_name="d", group="batch", version="v1", kind="Job",
                     include_owned=True)
    src = {
        "metadata": {"name": "j", "namespace": "p"},
        "spec": {
            "selector": {"matchLabels": {"controller-uid": "abc"}},
            "template": {"metadata": {"labels": {"controller-uid": "abc", "job-name": "j",
                                                  "app": "x"}}},
        },
    }
    body = run(src, spec).body
    assert "selector" not in body["spec"]
    assert body["spec"]["template"]["metadata"]["labels"] == {"app": "x"}


def test_default_exclusions() -> None:
    secret = ShardSpec(syncer_namespace="o", syncer_name="d", group="", version="v1", kind="Secret")
    assert exclusion_reason({"metadata": {"name": "t"}, "type": "kubernetes.io/service-account-token"},
                            spec=secret)
    assert exclusion_reason({"metadata": {"name": "t"}, "type": "Opaque"}, spec=secret) is None
    assert exclusion_reason({"metadata": {"name": "kube-root-ca.crt"}}, spec=SPEC)
    assert exclusion_reason(
        {"metadata": {"name": "x", "labels": {"syncer.gkelabs.io/exclude": "true"}}}, spec=SPEC)
    owned = {"metadata": {"name": "x", "ownerReferences": [{"controller": True, "name": "o"}]}}
    assert exclusion_reason(owned, spec=SPEC)
    incl = ShardSpec(syncer_namespace="o", syncer_name="d", group="", version="v1",
                     kind="ConfigMap", include_owned=True)
    assert exclusion_reason(owned, spec=incl) is None
    not_controller = {"metadata": {"name": "x", "ownerReferences": [{"name": "o"}]}}
    assert exclusion_reason(not_controller, spec=SPEC) is None


def test_what_the_destination_control_plane_makes_is_excluded() -> None:
    sa = ShardSpec(syncer_namespace="o", syncer_name="d", group="", version="v1",
                   kind="ServiceAccount")
    secret = ShardSpec(syncer_namespace="o", syncer_name="d", group="", version="v1", kind="Secret")
    assert exclusion_reason({"metadata": {"name": "default", "namespace": "p"}}, spec=sa)
    assert exclusion_reason({"metadata": {"name": "app", "namespace": "p"}}, spec=sa) is None
    # Only the core ServiceAccount named `default`: a ConfigMap or CRD of that name syncs.
    assert exclusion_reason({"metadata": {"name": "default", "namespace": "p"}}, spec=SPEC) is None
    crd = ShardSpec(syncer_namespace="o", syncer_name="d", group="example.com", version="v1",
                    kind="ServiceAccount")
    assert exclusion_reason({"metadata": {"name": "default", "namespace": "p"}}, spec=crd) is None
    assert exclusion_reason(
        {"metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
         "type": "bootstrap.kubernetes.io/token"},
        spec=ShardSpec(syncer_namespace="o", syncer_name="d", group="", version="v1",
                       kind="Secret", source_namespace="kube-system"),
    )
    assert exclusion_reason({"metadata": {"name": "t", "namespace": "p"},
                             "type": "bootstrap.kubernetes.io/token"}, spec=secret)


def test_system_namespaces_only_when_a_rule_names_them() -> None:
    every = SPEC  # source_namespace None: all namespaces
    for ns in ("kube-system", "kube-public", "kube-node-lease"):
        why = exclusion_reason({"metadata": {"name": "x", "namespace": ns}}, spec=every)
        assert why is not None and ns in why
        named = ShardSpec(syncer_namespace="o", syncer_name="d", group="", version="v1",
                          kind="ConfigMap", source_namespace=ns)
        assert exclusion_reason({"metadata": {"name": "x", "namespace": ns}}, spec=named) is None
    for ns in ("default", "kube-systems", "prod"):
        assert exclusion_reason({"metadata": {"name": "x", "namespace": ns}}, spec=every) is None
    # Cluster-scoped objects have no namespace (a Namespace *named* kube-system is not in it).
    nsk = ShardSpec(syncer_namespace="o", syncer_name="d", group="", version="v1", kind="Namespace")
    assert exclusion_reason({"metadata": {"name": "kube-system"}}, spec=nsk) is None


def test_owned_by_checks_the_shard_source_namespace() -> None:
    spec_a = ShardSpec(syncer_namespace="ops", syncer_name="dr", group="", version="v1",
                       kind="ConfigMap", source_namespace="a", dest_namespace="dr")
    spec_b = ShardSpec(syncer_namespace="ops", syncer_name="dr", group="", version="v1",
                       kind="ConfigMap", source_namespace="b", dest_namespace="dr")
    obj = cm()
    obj["metadata"]["namespace"] = "a"
    body = run(obj, spec_a).body
    assert owned_by(body, spec=spec_a, managed_by=MB)
    assert not owned_by(body, spec=spec_b, managed_by=MB)
