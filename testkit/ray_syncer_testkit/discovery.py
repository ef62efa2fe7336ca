"""Discovery documents: /version, /api, /api/v1, /apis, /apis/{g}, /apis/{g}/{v}.

Built from the registry (kinds.py) on demand and cached per registry
generation, so CRD changes show immediately and steady-state discovery costs
one dict lookup. http.py serves them; the shapes are the unaggregated v1
discovery documents kube-apiserver returns for ``Accept: application/json``.
"""

from __future__ import annotations

from typing import Any

import orjson

from .kinds import Registry, ResourceType

Obj = dict[str, Any]
KUBE_VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-ray-syncer-testing",
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2024-08-13T00:00:00Z", "goVersion": "go1.22.5", "compiler": "gc",
                "platform": "linux/amd64"}


def _resource_entries(rt: ResourceType) -> list[Obj]:
    main: Obj = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    out = [main]
    if rt.has_status:
        out.append({"name": f"{rt.plural}/status", "singularName": "", "namespaced": rt.namespaced,
                    "kind": rt.kind, "verbs": ["get", "patch", "update"]})
    return out


class Discovery:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cache: dict[str, bytes | None] = {}
        self._generation = -1

    def document(self, path: str, *, server_address: str) -> bytes | None:
        """The JSON bytes for a discovery path (no trailing slash), or None if not served."""
        if self._generation != self.registry.generation:
            self._cache.clear()
            self._generation = self.registry.generation
        if path not in self._cache:
            doc = self._build(path, server_address)
            self._cache[path] = None if doc is None else orjson.dumps(doc)
        return self._cache[path]

    def _group(self, group: str, versions: list[str]) -> Obj:
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def _build(self, path: str, server_address: str) -> Obj | None:
        groups = self.registry.groups()
        parts = [p for p in path.split("/") if p]
        if parts == ["version"]:
            return KUBE_VERSION
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": groups.get("", ["v1"]),
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}
        if parts == ["apis"]:
            return {"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [self._group(g, vs) for g, vs in sorted(groups.items()) if g]}
        if len(parts) == 2 and parts[0] == "apis":
            if parts[1] not in groups or not parts[1]:
                return None
            return {"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1], groups[parts[1]])}
        if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            resources = self.registry.resources(group, version)
            if resources is None:
                return None
            entries = [e for rt in resources for e in _resource_entries(rt)]
            return {"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": f"{group}/{version}" if group else version, "resources": entries}
        return None
