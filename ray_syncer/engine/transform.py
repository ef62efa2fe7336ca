"""The pure transform: source object -> desired destination object (docs/design.md §3).

No I/O and no clock: the same source content and spec always give a
byte-identical desired object and the same content hash, which is what makes
no-op detection (and therefore "a resync costs zero writes") possible.

The destination object is built from an allowlist, then stripped:

* metadata keeps only name, namespace (mapped), labels and annotations; every
  server-managed field (uid, resourceVersion, managedFields, ownerReferences,
  finalizers, ...) is simply never copied;
* without ``syncFields`` every top-level field except apiVersion/kind/metadata/
  status is copied; with ``syncFields`` only those dotted paths are (Go
  KRMSyncer semantics), and ``status`` in the list means status sync;
* per-kind rules remove what the destination must allocate itself (Service
  cluster IPs, a PVC's bound volume, a Job's controller-uid selector);
* with namespace mapping, references to the mapped namespace follow it
  (``references``: a RoleBinding's ServiceAccount subjects, ...);
* ownership is marked with the managed-by label and the source/hash
  annotations.

``exclusion_reason`` implements the default exclusions: what the destination's
own control plane makes (the ``default`` ServiceAccount, ``kube-root-ca.crt``,
service-account-token and bootstrap-token Secrets), anything in a system
namespace unless the shard is for that very namespace, opted-out and
controller-owned objects. The shard treats an excluded object as absent from the
source: never written, and an owned copy of it is removed like that of a deleted
source object (only on a watch event or after a complete relist, with a uid
precondition and the delete-storm guard); a destination object the syncer does
not own is never touched.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ray_syncer import API_GROUP
from ray_syncer.engine.references import rewrite_references
from ray_syncer.engine.spec import ShardSpec

MANAGED_BY_LABEL = f"{API_GROUP}/managed-by"
EXCLUDE_LABEL = f"{API_GROUP}/exclude"
ANN_SYNCER = f"{API_GROUP}/syncer"
ANN_SOURCE_CLUSTER = f"{API_GROUP}/source-cluster"
ANN_SOURCE_NAMESPACE = f"{API_GROUP}/source-namespace"
ANN_SOURCE_NAME = f"{API_GROUP}/source-name"
ANN_SOURCE_UID = f"{API_GROUP}/source-uid"
ANN_CONTENT_HASH = f"{API_GROUP}/content-hash"
OWNERSHIP_ANNOTATIONS = (
    ANN_SYNCER,
    ANN_SOURCE_CLUSTER,
    ANN_SOURCE_NAMESPACE,
    ANN_SOURCE_NAME,
    ANN_SOURCE_UID,
    ANN_CONTENT_HASH,
)

DROPPED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
PVC_BIND_ANNOTATIONS = frozenset(
    {
        "pv.kubernetes.io/bind-completed",
        "pv.kubernetes.io/bound-by-controller",
        "volume.beta.kubernetes.io/storage-provisioner",
        "volume.kubernetes.io/storage-provisioner",
        "volume.kubernetes.io/selected-node",
    }
)
JOB_CONTROLLER_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
SERVICE_ALLOCATED_FIELDS = ("clusterIP", "clusterIPs", "healthCheckNodePort")
# Secret types the destination's control plane issues itself.
CLUSTER_SECRET_TYPES = frozenset(
    {"kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"}
)
# Namespaces an all-namespaces shard leaves alone; a rule that names one still syncs it.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def managed_by_value(syncer_namespace: str, syncer_name: str) -> str:
    """The managed-by label value naming a KRMSyncer: ``<ns>.<name>``, hashed if too long."""
    plain = f"{syncer_namespace}.{syncer_name}"
    if len(plain) <= 63 and _LABEL_VALUE.match(plain):
        return plain
    digest = hashlib.sha256(plain.encode()).hexdigest()[:16]
    prefix = plain[:40].rstrip("-_.")
    return f"{prefix}-{digest}" if prefix else f"krmsyncer-{digest}"


def exclusion_reason(obj: Mapping[str, Any], *, spec: ShardSpec) -> str | None:
    """Why ``obj`` is never synced by default, or None if it should be."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(EXCLUDE_LABEL) == "true":
        return f"labelled {EXCLUDE_LABEL}=true"
    namespace = meta.get("namespace")
    if spec.source_namespace is None and namespace in SYSTEM_NAMESPACES:
        return f"in {namespace} (a rule must name that namespace to sync it)"
    if spec.group == "":
        if spec.kind == "Secret" and obj.get("type") in CLUSTER_SECRET_TYPES:
            return f"{obj.get('type')} Secret"
        if spec.kind == "ConfigMap" and meta.get("name") == "kube-root-ca.crt":
            return "kube-root-ca.crt ConfigMap"
        if spec.kind == "ServiceAccount" and meta.get("name") == "default":
            return "the default ServiceAccount"
    if not spec.include_owned:
        for ref in meta.get("ownerReferences") or ():
            if ref.get("controller") is True:
                return "controller-owned (set includeOwned to sync it)"
    return None


def dest_namespace_for(spec: ShardSpec, source_namespace: str | None) -> str | None:
    if source_namespace is None:
        return None  # cluster-scoped
    return spec.dest_namespace or source_namespace


def object_key(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def split_key(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, key)


@dataclass(frozen=True)
class Desired:
    """What the destination should hold for one source object."""

    body: dict[str, Any]  # the apply body (status included only when not via /status)
    status: dict[str, Any] | None  # applied through /status when not None
    hash: int

    @property
    def namespace(self) -> str | None:
        ns: str | None = self.body["metadata"].get("namespace")
        return ns

    @property
    def name(self) -> str:
        name: str = self.body["metadata"]["name"]
        return name

    @property
    def key(self) -> str:
        return object_key(self.namespace, self.name)


def canonical_bytes(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace. The basis of the content hash."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def content_hash(obj: Any) -> int:
    """A 63-bit hash of canonical JSON (fits a small int; never 0, which means unknown)."""
    digest = hashlib.blake2b(canonical_bytes(obj), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 1) or 1


def hash_hex(value: int) -> str:
    return f"{value:016x}"


def parse_hash(text: str | None) -> int:
    """The hash stored in an annotation, or 0 if missing/garbled."""
    if not text:
        return 0
    try:
        return int(text, 16)
    except ValueError:
        return 0


def _sorted(value: Any) -> Any:
    """A deep copy with every mapping's keys in sorted order (one C round trip through orjson)."""
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def _get_path(obj: Mapping[str, Any], path: list[str]) -> tuple[bool, Any]:
    cur: Any = obj
    for part in path:
        if not isinstance(cur, Mapping) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def _set_path(obj: dict[str, Any], path: list[str], value: Any) -> None:
    cur = obj
    for part in path[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[path[-1]] = value


def _strip_per_kind(spec: ShardSpec, body: dict[str, Any], annotations: dict[str, str]) -> None:
    kind_spec = body.get("spec")
    if spec.group == "" and spec.kind == "Service" and isinstance(kind_spec, dict):
        for field in SERVICE_ALLOCATED_FIELDS:
            kind_spec.pop(field, None)
    elif spec.group == "" and spec.kind == "PersistentVolumeClaim":
        if isinstance(kind_spec, dict):
            kind_spec.pop("volumeName", None)
        for ann in PVC_BIND_ANNOTATIONS:
            annotations.pop(ann, None)
    elif spec.group == "batch" and spec.kind == "Job" and isinstance(kind_spec, dict):
        selector = kind_spec.get("selector")
        if isinstance(selector, dict) and not kind_spec.get("manualSelector"):
            match = selector.get("matchLabels") or {}
            for label in JOB_CONTROLLER_LABELS:
                match.pop(label, None)
            if not match and not selector.get("matchExpressions"):
                kind_spec.pop("selector", None)
        tmeta = (kind_spec.get("template") or {}).get("metadata")
        if isinstance(tmeta, dict) and isinstance(tmeta.get("labels"), dict):
            for label in (*JOB_CONTROLLER_LABELS, "job-name", "batch.kubernetes.io/job-name"):
                tmeta["labels"].pop(label, None)


def syncs_status(spec: ShardSpec) -> bool:
    return spec.sync_status or (spec.sync_fields is not None and "status" in spec.sync_fields)


def transform(
    obj: Mapping[str, Any],
    *,
    spec: ShardSpec,
    managed_by: str,
    namespaced: bool,
    status_subresource: bool,
) -> Desired:
    """Build the desired destination object for a (non-excluded) source object."""
    meta = obj.get("metadata") or {}
    name = meta["name"]
    src_ns = meta.get("namespace") if namespaced else None
    out_meta: dict[str, Any] = {"name": name}
    ns = dest_namespace_for(spec, src_ns)
    if ns:
        out_meta["namespace"] = ns
    labels = dict(meta.get("labels") or {})
    labels[MANAGED_BY_LABEL] = managed_by
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k not in DROPPED_ANNOTATIONS and k not in OWNERSHIP_ANNOTATIONS
    }

    body: dict[str, Any] = {}
    if spec.sync_fields is None:
        for k, v in obj.items():
            if k not in ("apiVersion", "kind", "metadata", "status"):
                body[k] = v
    else:
        for path in spec.sync_fields:
            parts = [p for p in path.split(".") if p]
            if not parts or parts[0] in ("apiVersion", "kind", "metadata", "status"):
                continue
            found, value = _get_path(obj, parts)
            if found:
                _set_path(body, parts, value)
    body = _sorted(body)  # also a deep copy: per-kind stripping must not touch the source
    status: dict[str, Any] | None = None
    if syncs_status(spec) and isinstance(obj.get("status"), dict):
        status = _sorted(obj["status"])
    _strip_per_kind(spec, body, annotations)
    if src_ns and ns and ns != src_ns:
        rewrite_references(spec.group, spec.kind, body, source_ns=src_ns, dest_ns=ns)

    annotations[ANN_SYNCER] = f"{spec.syncer_namespace}/{spec.syncer_name}"
    annotations[ANN_SOURCE_CLUSTER] = spec.source_cluster
    if src_ns:
        annotations[ANN_SOURCE_NAMESPACE] = src_ns
    annotations[ANN_SOURCE_NAME] = name
    if meta.get("uid"):
        annotations[ANN_SOURCE_UID] = meta["uid"]
    out_meta["labels"] = labels
    out_meta["annotations"] = annotations

    full: dict[str, Any] = {
        "apiVersion": spec.group_version,
        "kind": spec.kind,
        "metadata": out_meta,
        **body,
    }
    digest = content_hash({"object": full, "status": status})
    annotations[ANN_CONTENT_HASH] = hash_hex(digest)
    full = _sorted(full)
    if status is not None and not status_subresource:
        full["status"] = status
        status = None
    return Desired(body=full, status=status, hash=digest)


def status_body(desired: Desired) -> dict[str, Any]:
    """The apply body for the /status subresource."""
    meta: dict[str, Any] = {"name": desired.name}
    if desired.namespace:
        meta["namespace"] = desired.namespace
    return {
        "apiVersion": desired.body["apiVersion"],
        "kind": desired.body["kind"],
        "metadata": meta,
        "status": desired.status,
    }


def owned_by(dest_obj: Mapping[str, Any], *, spec: ShardSpec, managed_by: str) -> bool:
    """Whether a destination object belongs to *this shard* (not just this syncer).

    Two shards of one syncer may map different source namespaces into one
    destination namespace; each must only ever act on its own copies.
    """
    meta = dest_obj.get("metadata") or {}
    if (meta.get("labels") or {}).get(MANAGED_BY_LABEL) != managed_by:
        return False
    annotations = meta.get("annotations") or {}
    if spec.source_namespace is not None:
        return bool(annotations.get(ANN_SOURCE_NAMESPACE) == spec.source_namespace)
    return True


def held_hash(dest_obj: Mapping[str, Any]) -> int:
    annotations = (dest_obj.get("metadata") or {}).get("annotations") or {}
    return parse_hash(annotations.get(ANN_CONTENT_HASH))
