"""Object verbs: get, list, create, replace, patch, apply, delete, deletecollection.

The semantics of kube-apiserver's generic registry, independent of HTTP:
http.py parses a request into a :class:`Target` and a body and calls one
method here; every method returns ``(status code, JSON-able body)`` or raises
a :class:`~.errors.StatusError`. Writes go through :meth:`ObjectApi._update`
or :meth:`ObjectApi._create`, the one place that keeps server-managed
metadata, bumps ``generation`` only on non-metadata, non-status changes,
skips no-op writes (no new resourceVersion), runs defaulting/validation
(admission.py, schema.py), keeps ``managedFields`` (ssa.py) and finishes
deletions whose finalizers are gone. crds.py hooks in after CRD writes.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
import yaml

from . import admission, crds, patches, schema, ssa
from .errors import (
    StatusError,
    already_exists,
    bad_request,
    conflict,
    field_forbidden,
    field_required,
    invalid,
    method_not_allowed,
    not_found,
)
from .kinds import Registry, ResourceType
from .selectors import FieldSelector, LabelSelector
from .store import Store

Obj = dict[str, Any]
Query = dict[str, str]
NS_KEY = ("", "namespaces")
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"


_clock_cache: list[Any] = [0, ""]


def utc_now() -> str:
    """RFC 3339 seconds, as Kubernetes timestamps are; formatted once per second (hot path)."""
    now = int(time.time())
    if now != _clock_cache[0]:
        _clock_cache[0] = now
        _clock_cache[1] = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(_clock_cache[1])


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None = None
    subresource: str | None = None


def _copy(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj))


def _without_rv(obj: Obj) -> Obj:
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    return {**obj, "metadata": meta}


def manager_from_agent(user_agent: str) -> str:
    # kube-apiserver's default field manager: the User-Agent up to the first "/".
    return (user_agent or "unknown").split("/", 1)[0][:128] or "unknown"


def _check_field_manager(query: Query, options: str) -> None:
    """The write options' fieldManager as kube-apiserver validates it (422 on CreateOptions etc.)."""
    causes = ssa.manager_causes(query.get("fieldManager") or "", "fieldManager")
    if causes:
        raise invalid(options, "", "meta.k8s.io", causes)


def _undecodable(rt: ResourceType, obj: Obj, failure: str, via: str) -> StatusError:
    """A body the apiserver's decoder refuses (a bad MicroTime), worded as it words it per verb."""
    version = rt.api_version.rpartition("/")[2]
    gvk = f"{rt.group}/{version}, Kind={rt.kind}"
    if via == "patch":
        # The patched object does not decode: a 422 on the field "patch", quoting the object.
        quoted = orjson.dumps(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()).decode()
        return StatusError(422, "Invalid", f' "" is invalid: patch: Invalid value: {quoted}: {failure}',
                           details={"causes": [{"reason": "FieldValueInvalid", "field": "patch",
                                                "message": f"Invalid value: {quoted}: {failure}"}]})
    if via == "apply":
        name = (obj.get("metadata") or {}).get("name", "")
        return StatusError(500, "", f"failed to convert new object (/{name}; {gvk}) to proper version: "
                                    f"unable to convert unstructured object to {gvk}: {failure}")
    return bad_request(f'{rt.kind} in version "{version}" cannot be handled as a {rt.kind}: {failure}')


class ObjectApi:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        *,
        clock: Callable[[], str] = utc_now,
        bootstrap_namespace: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.ips = admission.ClusterIPs()
        self.bootstrap_namespace = bootstrap_namespace
        # Continue tokens issued before this revision are rejected with 410 (compaction).
        self.compacted_at = 0
        self.rng = random.Random()
        self._list_types: dict[int, tuple[Any, ssa.ListTypes | None]] = {}

    # -- helpers -----------------------------------------------------------
    def _versioned(self, rt: ResourceType, obj: Obj) -> Obj:
        if obj.get("apiVersion") != rt.api_version:
            return {**obj, "apiVersion": rt.api_version}
        return obj

    def _key_ns(self, t: Target) -> str:
        return (t.namespace or "") if t.rt.namespaced else ""

    def _require_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns = self.store.get(NS_KEY, "", namespace)
        if ns is None:
            raise not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise admission.namespace_terminating(rt, name, namespace)

    def _check_verb(self, rt: ResourceType, verb: str) -> None:
        if verb not in rt.verbs:
            raise method_not_allowed()

    def _decode(self, t: Target, body: Any, *, via: str = "body") -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        obj = _copy(body)
        rt = t.rt
        if obj.get("kind") and obj["kind"] != rt.kind:
            raise bad_request(f"the kind of the object ({obj['kind']}) does not match the kind of the "
                              f"resource ({rt.kind})")
        if obj.get("apiVersion") and obj["apiVersion"] != rt.api_version:
            raise bad_request(f"the API version in the data ({obj['apiVersion']}) does not match the expected "
                              f"API version ({rt.api_version})")
        obj = {"apiVersion": rt.api_version, "kind": rt.kind,
               **{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}}
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = meta = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced and t.namespace is not None:
            if meta.get("namespace") and meta["namespace"] != t.namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on "
                                  "the request")
            meta["namespace"] = t.namespace
        elif not rt.namespaced:
            meta.pop("namespace", None)
        if t.name is not None:
            if meta.get("name") and meta["name"] != t.name:
                raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL "
                                  f"({t.name})")
            meta["name"] = t.name
        failure = admission.decode_micro_times(rt, obj)
        if failure is None and via != "apply":
            failure = ssa.decode_error(obj, builtin=rt.builtin)
        if failure:
            raise _undecodable(rt, obj, failure, via)
        return obj

    def _custom_schema(self, rt: ResourceType, obj: Obj, query: Query) -> None:
        """Prune, default and validate a custom resource in place (schema.py)."""
        if rt.builtin or rt.schema is None:
            return
        pruned: list[str] = []
        cleaned = schema.prune(obj, rt.schema, root=True, pruned=pruned)
        if pruned and query.get("fieldValidation") == "Strict":
            raise bad_request("strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in pruned))
        schema.apply_defaults(cleaned, rt.schema)
        obj.clear()
        obj.update(cleaned)
        errs = schema.validate({k: v for k, v in obj.items() if k not in ("metadata",)}, rt.schema, root=True)
        if errs:
            raise invalid(rt.kind, obj["metadata"].get("name", ""), rt.group, errs)

    def _lists(self, rt: ResourceType) -> ssa.ListTypes | None:
        """Which lists of this kind SSA merges by key (custom resources: from the schema)."""
        if rt.builtin:
            return ssa.builtin_list_types
        if rt.schema is None:
            return None
        cached = self._list_types.get(id(rt.schema))
        if cached is None or cached[0] is not rt.schema:
            cached = (rt.schema, ssa.schema_list_types(rt.schema))
            self._list_types[id(rt.schema)] = cached
        return cached[1]

    # -- reads -------------------------------------------------------------
    def get(self, t: Target) -> tuple[int, Obj]:
        self._check_verb(t.rt, "get")
        obj = self.store.get(t.rt.key, self._key_ns(t), t.name or "")
        if obj is None:
            raise not_found(t.rt.plural, t.name or "", t.rt.group)
        if t.subresource == "status" and not t.rt.has_status:
            raise not_found(t.rt.plural, t.name or "", t.rt.group)
        return 200, self._versioned(t.rt, obj)

    def _encode_continue(self, rv: int, ns: str, name: str) -> str:
        raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{ns}/{name}\x00"})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode_continue(self, token: str) -> tuple[int, str, str]:
        try:
            raw = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            ns, _, name = str(raw["start"]).rstrip("\x00").partition("/")
            return int(raw["rv"]), ns, name
        except Exception as exc:
            raise bad_request(f"continue key is not valid: {exc}") from None

    def list(self, t: Target, query: Query) -> tuple[int, Obj]:
        rt = t.rt
        self._check_verb(rt, "list")
        labels = LabelSelector.parse(query.get("labelSelector"))
        fields = FieldSelector.parse(query.get("fieldSelector"), allowed=rt.field_labels, kind=rt.kind)
        limit = int(query.get("limit") or 0)
        ns = t.namespace if rt.namespaced else None
        rv = self.store.revision
        start: tuple[str, str] | None = None
        token = query.get("continue")
        if token:
            token_rv, cns, cname = self._decode_continue(token)
            if token_rv < self.compacted_at:
                from .errors import expired

                raise expired("The provided continue parameter is too old to display a consistent list result. "
                              "You can start a new list without the continue parameter.")
            start = (cns, cname)
            rv = token_rv
        items: list[Obj] = []
        more = False
        remaining = 0
        name_only = fields.exact_name() if fields else None
        source = (
            [o for o in [self.store.get(rt.key, ns or "", name_only)] if o] if name_only and ns is not None
            else self.store.iter(rt.key, ns)
        )
        strip = rt.builtin
        for obj in source:
            meta = obj["metadata"]
            if start is not None and (meta.get("namespace", ""), meta["name"]) <= start:
                continue
            if labels is not None and not labels.matches(obj):
                continue
            if fields is not None and not fields.matches(obj):
                continue
            if limit and len(items) >= limit:
                more = True
                remaining += 1
                continue
            if strip:
                # Typed lists from kube-apiserver carry no apiVersion/kind on their items.
                items.append({k: v for k, v in obj.items() if k != "apiVersion" and k != "kind"})
            else:
                items.append(self._versioned(rt, obj))
        list_meta: Obj = {"resourceVersion": str(rv)}
        if more and items:
            last = items[-1]["metadata"]
            list_meta["continue"] = self._encode_continue(rv, last.get("namespace", ""), last["name"])
            list_meta["remainingItemCount"] = remaining
        return 200, {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": list_meta, "items": items}

    # -- create ------------------------------------------------------------
    def create(self, t: Target, body: Any, query: Query, *, user_agent: str) -> tuple[int, Obj]:
        rt = t.rt
        self._check_verb(rt, "create")
        _check_field_manager(query, "CreateOptions")
        if t.subresource:
            raise method_not_allowed()
        if rt.namespaced and t.namespace is None:
            raise method_not_allowed("POST requires a namespace for a namespaced resource")
        obj = self._decode(t, body)
        meta = obj["metadata"]
        if not meta.get("name"):
            gen = meta.get("generateName")
            if not gen:
                raise invalid(rt.kind, "", rt.group,
                              [field_required("metadata.name", "name or generateName is required")])
            for _ in range(8):
                name = gen + "".join(self.rng.choice(_GEN_CHARS) for _ in range(5))
                if self.store.get(rt.key, meta.get("namespace", ""), name) is None:
                    break
            meta["name"] = name
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if rt.key == ("", "bindings"):
            return 201, obj
        manager = query.get("fieldManager") or manager_from_agent(user_agent)
        new = self._prepare_new(t, obj, query)
        ssa.record_update(None, new, manager=manager, subresource=None, has_status=rt.has_status,
                          api_version=rt.api_version, now=self.clock(), list_types=self._lists(rt),
                          builtin=rt.builtin, versions=self.registry.api_versions(rt.key))
        self._check_managed_fields(rt, new)
        return 201, self._create(rt, new, dry_run=query.get("dryRun") == "All")

    def _check_managed_fields(self, rt: ResourceType, new: Obj) -> None:
        """422 for managedFields a write set explicitly that kube-apiserver's validation refuses."""
        causes = ssa.invalid_entries(new["metadata"].get("managedFields"))
        if causes:
            raise invalid(rt.kind, new["metadata"].get("name", ""), rt.group, causes)

    def _prepare_new(self, t: Target, obj: Obj, query: Query) -> Obj:
        rt = t.rt
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if rt.namespaced else ""
        if rt.namespaced:
            self._require_namespace(rt, ns, meta["name"])
        if self.store.get(rt.key, ns, meta["name"]) is not None:
            raise already_exists(rt.plural, meta["name"], rt.group)
        for f in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(f, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.clock()
        if rt.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.has_status:
            obj.pop("status", None)
        admission.default_new(rt, obj, ips=self.ips)
        self._custom_schema(rt, obj, query)
        admission.validate_object(rt, obj)
        if rt.key == crds.CRD_KEY:
            crds.validate_crd(obj)
            if self.registry.by_kind(obj["spec"]["group"], obj["spec"]["names"]["kind"]) is not None:
                raise already_exists(rt.plural, meta["name"], rt.group)
            obj = crds.with_status(obj, now=self.clock())
        return obj

    def _create(self, rt: ResourceType, new: Obj, *, dry_run: bool) -> Obj:
        if dry_run:
            return new
        self.store.commit(rt.key, new, "ADDED", old=None)
        if rt.key == crds.CRD_KEY:
            for r in crds.resource_types(new):
                self.registry.add(r)
        elif rt.key == NS_KEY and self.bootstrap_namespace is not None:
            self.bootstrap_namespace(new["metadata"]["name"])
        return new

    # -- update ------------------------------------------------------------
    def replace(self, t: Target, body: Any, query: Query, *, user_agent: str) -> tuple[int, Obj]:
        rt = t.rt
        self._check_verb(rt, "update")
        _check_field_manager(query, "UpdateOptions")
        if t.subresource and not (t.subresource == "status" and rt.has_status):
            raise not_found(rt.plural, t.name or "", rt.group)
        obj = self._decode(t, body)
        old = self.store.get(rt.key, self._key_ns(t), t.name or "")
        if old is None:
            raise not_found(rt.plural, t.name or "", rt.group)
        self._preconditions(rt, old, obj["metadata"])
        manager = query.get("fieldManager") or manager_from_agent(user_agent)
        return 200, self._update(t, old, obj, manager=manager, query=query)

    def _preconditions(self, rt: ResourceType, old: Obj, meta: Obj) -> None:
        om = old["metadata"]
        if meta.get("uid") and meta["uid"] != om["uid"]:
            raise conflict(rt.plural, om["name"], rt.group,
                           why=f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {om['uid']}")
        if meta.get("resourceVersion") and meta["resourceVersion"] != om["resourceVersion"]:
            raise conflict(rt.plural, om["name"], rt.group)

    def _update(self, t: Target, old: Obj, new: Obj, *, manager: str, query: Query,
                applied: bool = False) -> Obj:
        rt = t.rt
        om = old["metadata"]
        if t.subresource == "status":
            status = new.get("status")
            mf = new["metadata"].get("managedFields")
            new = {k: v for k, v in old.items() if k != "status"}
            new["metadata"] = dict(om)
            if applied:
                new["metadata"].pop("managedFields", None)
                if mf is not None:
                    new["metadata"]["managedFields"] = mf
            if status is not None:
                new["status"] = status
            self._custom_schema(rt, new, query)  # status is pruned and validated too
        else:
            meta = new["metadata"]
            for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "generation", "namespace", "name"):
                if f in om:
                    meta[f] = om[f]
                else:
                    meta.pop(f, None)
            if rt.has_status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            if om.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(om.get("finalizers") or [])
                if added:
                    raise invalid(rt.kind, om["name"], rt.group, [field_forbidden(
                        "metadata.finalizers", "no new finalizers can be added if the object is being deleted")])
            admission.default_update(rt, old, new)
            self._custom_schema(rt, new, query)
            admission.validate_object(rt, new)
            admission.validate_update(rt, old, new)
            if rt.key == crds.CRD_KEY:
                crds.validate_crd(new)
                new = crds.with_status(new, now=self.clock())
            if rt.has_generation and any(
                new.get(k) != old.get(k) for k in {*new, *old} - {"metadata", "status", "apiVersion", "kind"}
            ):
                new["metadata"]["generation"] = om.get("generation", 1) + 1
        new["metadata"].pop("resourceVersion", None)
        new["apiVersion"] = old.get("apiVersion", rt.api_version)
        if not applied:
            ssa.record_update(old, new, manager=manager, subresource=t.subresource, has_status=rt.has_status,
                              api_version=rt.api_version, now=self.clock(), list_types=self._lists(rt),
                              builtin=rt.builtin, versions=self.registry.api_versions(rt.key))
            self._check_managed_fields(rt, new)
        if new == _without_rv(old):
            return self._versioned(rt, old)  # no-op: no write, no new resourceVersion
        if query.get("dryRun") == "All":
            new["metadata"]["resourceVersion"] = om["resourceVersion"]
            return self._versioned(rt, new)
        if om.get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._remove(rt, new)
            return self._versioned(rt, new)
        self.store.commit(rt.key, new, "MODIFIED", old=old)
        if rt.key == crds.CRD_KEY:
            self._reregister(old, new)
        return self._versioned(rt, new)

    def _reregister(self, old: Obj, new: Obj) -> None:
        old_key = (old["spec"]["group"], old["spec"]["names"]["plural"])
        self.registry.remove_key(old_key)
        for r in crds.resource_types(new):
            self.registry.add(r)

    # -- patch and apply -----------------------------------------------------
    def patch(self, t: Target, raw: bytes, content_type: str, query: Query, *, user_agent: str) -> tuple[int, Obj]:
        rt = t.rt
        self._check_verb(rt, "patch")
        if t.subresource and not (t.subresource == "status" and rt.has_status):
            raise not_found(rt.plural, t.name or "", rt.group)
        ctype = content_type.split(";", 1)[0].strip().lower()
        accepted = [JSON_PATCH, MERGE, APPLY] + ([STRATEGIC] if rt.builtin else [])
        if ctype not in accepted:
            from .errors import unsupported_media_type

            raise unsupported_media_type(ctype, accepted)
        _check_field_manager(query, "PatchOptions")
        if ctype == APPLY:
            return self.apply(t, raw, query)
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"error decoding patch: {exc}") from None
        old = self.store.get(rt.key, self._key_ns(t), t.name or "")
        if old is None:
            raise not_found(rt.plural, t.name or "", rt.group)
        base = self._versioned(rt, old)
        if ctype == JSON_PATCH:
            new = patches.json_patch(base, doc)
        elif ctype == MERGE:
            if not isinstance(doc, dict):
                raise bad_request("merge patch must be a JSON object")
            new = patches.merge_patch(_copy(base), doc)
        else:
            if not isinstance(doc, dict):
                raise bad_request("strategic merge patch must be a JSON object")
            new = patches.strategic_merge(_copy(base), doc)
        if not isinstance(new, dict):
            raise bad_request("patch produced a non-object")
        new = self._decode(Target(rt, t.namespace, t.name, t.subresource), new, via="patch")
        meta = new["metadata"]
        if meta.get("uid") != old["metadata"]["uid"] and meta.get("uid"):
            raise conflict(rt.plural, old["metadata"]["name"], rt.group,
                           why="Precondition failed: UID in precondition: "
                               f"{meta['uid']}, UID in object meta: {old['metadata']['uid']}")
        if meta.get("resourceVersion") and meta["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, old["metadata"]["name"], rt.group)
        manager = query.get("fieldManager") or manager_from_agent(user_agent)
        return 200, self._update(t, old, new, manager=manager, query=query)

    def apply(self, t: Target, raw: bytes, query: Query) -> tuple[int, Obj]:
        rt = t.rt
        manager = query.get("fieldManager")
        if not manager:
            raise invalid("PatchOptions", "", "meta.k8s.io",
                          [field_required("fieldManager", "is required for apply patch")])
        force = query.get("force", "").lower() == "true"
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:
                body = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            except yaml.YAMLError as exc:
                raise bad_request(f"error decoding YAML: {exc}") from None
        if not isinstance(body, dict):
            raise bad_request("apply body must be an object")
        if not body.get("apiVersion") or not body.get("kind"):
            raise bad_request("invalid object: apiVersion and kind must be set")
        obj = self._decode(t, body, via="apply")
        managed = obj["metadata"].get("managedFields")
        if isinstance(managed, list) and all(isinstance(e, dict) for e in managed):
            # kube-apiserver reads them as a list of entries; one that is not an object reads as none.
            raise bad_request("metadata.managedFields must be nil")
        ns = self._key_ns(t)
        old = self.store.get(rt.key, ns, t.name or "")
        now = self.clock()
        if old is None:
            if t.subresource:
                raise not_found(rt.plural, t.name or "", rt.group)
            merged = ssa.apply(None, obj, manager=manager, force=force, subresource=None,
                               has_status=rt.has_status, api_version=rt.api_version, now=now,
                               list_types=self._lists(rt), versions=self.registry.api_versions(rt.key))
            merged["apiVersion"], merged["kind"] = rt.api_version, rt.kind
            merged["metadata"]["name"] = t.name
            if rt.namespaced:
                merged["metadata"]["namespace"] = ns
            managed = merged["metadata"].pop("managedFields", None)
            new = self._prepare_new(t, merged, query)
            if managed:
                new["metadata"]["managedFields"] = managed
            return 201, self._create(rt, new, dry_run=query.get("dryRun") == "All")
        self._preconditions(rt, old, obj["metadata"])
        merged = ssa.apply(self._versioned(rt, old), obj, manager=manager, force=force,
                           subresource=t.subresource, has_status=rt.has_status, api_version=rt.api_version,
                           now=now, list_types=self._lists(rt), versions=self.registry.api_versions(rt.key))
        return 200, self._update(t, old, merged, manager=manager, query=query, applied=True)

    # -- delete --------------------------------------------------------------
    def _remove(self, rt: ResourceType, final: Obj, *, propagation: str = "Background") -> None:
        """Really delete: DELETED event carrying the final object under a new resourceVersion."""
        meta = final["metadata"]
        old = self.store.get(rt.key, meta.get("namespace", ""), meta["name"])
        self.store.commit(rt.key, final, "DELETED", old=old)
        self._collect_garbage(meta["uid"], orphan=propagation == "Orphan")
        if rt.key == crds.CRD_KEY:
            key = (final["spec"]["group"], final["spec"]["names"]["plural"])
            for obj in [*self.store.iter(key)]:
                self.store.commit(key, _copy(obj), "DELETED", old=obj)
            self.store.close_watchers(key)
            self.registry.remove_key(key)
        ns = meta.get("namespace")
        if ns:
            self._maybe_finish_namespace(ns)

    def _collect_garbage(self, uid: str, *, orphan: bool) -> None:
        """What the garbage collector does when an owner is gone (synchronously, here).

        Dependents whose owners are all gone are deleted (their finalizers respected); with the
        Orphan policy they lose the ownerReference instead.
        """
        for key, ns, name in self.store.dependents(uid):
            obj = self.store.get(key, ns, name)
            rt = self.registry.preferred(key)
            if obj is None or rt is None:
                continue
            refs = obj["metadata"].get("ownerReferences") or []
            if orphan:
                new = _copy(obj)
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                if not new["metadata"]["ownerReferences"]:
                    del new["metadata"]["ownerReferences"]
                self.store.commit(key, new, "MODIFIED", old=obj)
            elif not any(self.store.alive(r.get("uid", "")) for r in refs if r.get("uid") != uid):
                self._delete_one(rt, obj, dry_run=False)

    def _maybe_finish_namespace(self, ns: str) -> None:
        nso = self.store.get(NS_KEY, "", ns)
        if nso is None or not nso["metadata"].get("deletionTimestamp"):
            return
        if any(self.store.count(k, ns) for k in self.store.resource_keys() if k != NS_KEY):
            return
        self.store.commit(NS_KEY, _copy(nso), "DELETED", old=nso)

    def delete(self, t: Target, body: Any, query: Query) -> tuple[int, Obj]:
        rt = t.rt
        self._check_verb(rt, "delete")
        if t.subresource:
            raise method_not_allowed()
        old = self.store.get(rt.key, self._key_ns(t), t.name or "")
        if old is None:
            raise not_found(rt.plural, t.name or "", rt.group)
        opts = body if isinstance(body, dict) else {}
        pre = opts.get("preconditions") or {}
        om = old["metadata"]
        # kube-apiserver's wording (the registry's precondition check): it names the Kind, not the resource.
        if pre.get("uid") and pre["uid"] != om["uid"]:
            raise conflict(rt.kind, om["name"], rt.group,
                           why=f"the UID in the precondition ({pre['uid']}) does not match the UID in record "
                               f"({om['uid']}). The object might have been deleted and then recreated")
        if pre.get("resourceVersion") and pre["resourceVersion"] != om["resourceVersion"]:
            raise conflict(rt.kind, om["name"], rt.group,
                           why=f"the ResourceVersion in the precondition ({pre['resourceVersion']}) does not match "
                               f"the ResourceVersion in record ({om['resourceVersion']}). The object might have "
                               "been modified")
        dry = query.get("dryRun") == "All" or opts.get("dryRun") == ["All"]
        propagation = opts.get("propagationPolicy") or query.get("propagationPolicy") or "Background"
        return self._delete_one(rt, old, dry_run=dry, propagation=propagation)

    def _delete_one(self, rt: ResourceType, old: Obj, *, dry_run: bool,
                    propagation: str = "Background") -> tuple[int, Obj]:
        om = old["metadata"]
        if om.get("deletionTimestamp"):
            return 200, self._versioned(rt, old)
        if rt.key == NS_KEY or om.get("finalizers"):
            new = _copy(old)
            new["metadata"]["deletionTimestamp"] = self.clock()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if rt.key == NS_KEY:
                new["status"] = {"phase": "Terminating"}
            if dry_run:
                return 200, self._versioned(rt, new)
            self.store.commit(rt.key, new, "MODIFIED", old=old)
            if rt.key == NS_KEY:
                self._terminate_namespace(om["name"])
            return 200, self._versioned(rt, self.store.get(rt.key, "", om["name"]) or new)
        final = _copy(old)
        if not dry_run:
            self._remove(rt, final, propagation=propagation)
        if rt.builtin and rt.key != crds.CRD_KEY:
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": {"name": om["name"], "group": rt.group, "kind": rt.plural, "uid": om["uid"]}}
        return 200, self._versioned(rt, final)

    def _terminate_namespace(self, ns: str) -> None:
        for key in self.store.resource_keys():
            if key == NS_KEY:
                continue
            rt = self.registry.preferred(key)
            if rt is None or not rt.namespaced:
                continue
            for obj in [*self.store.iter(key, ns)]:
                self._delete_one(rt, obj, dry_run=False)
        self._maybe_finish_namespace(ns)

    def delete_collection(self, t: Target, body: Any, query: Query) -> tuple[int, Obj]:
        rt = t.rt
        self._check_verb(rt, "deletecollection")
        _, listed = self.list(t, {k: v for k, v in query.items() if k in ("labelSelector", "fieldSelector")})
        dry = query.get("dryRun") == "All"
        deleted = []
        for item in listed["items"]:
            meta = item["metadata"]
            obj = self.store.get(rt.key, meta.get("namespace", ""), meta["name"])
            if obj is not None:
                self._delete_one(rt, obj, dry_run=dry)
                deleted.append(item)
        return 200, {"kind": rt.list_kind, "apiVersion": rt.api_version,
                     "metadata": {"resourceVersion": str(self.store.revision)}, "items": deleted}

