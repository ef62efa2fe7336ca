"""The resource types a test server serves, and their registry.

A :class:`ResourceType` is one (group, version, plural) as discovery lists it.
Objects are stored per :attr:`ResourceType.key` = (group, plural), independent
of the version, so a CRD serving several versions shows the same objects under
each (the CRD "None" conversion strategy). The :class:`Registry` starts with
the built-in kinds below; crds.py adds and removes custom ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
ResourceKey = tuple[str, str]  # (group, plural)


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    has_status: bool = False
    # kube-apiserver only keeps metadata.generation for kinds whose strategy sets it.
    has_generation: bool = False
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    categories: tuple[str, ...] = ()
    builtin: bool = True
    # openAPIV3Schema of a custom resource version (schema.py prunes against it).
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    # additionalPrinterColumns of a custom resource version (tables.py).
    printer_columns: tuple[dict[str, Any], ...] | None = field(default=None, compare=False, hash=False)
    # Extra field selectors this kind accepts besides metadata.name/namespace.
    field_labels: tuple[str, ...] = ()

    @property
    def key(self) -> ResourceKey:
        return (self.group, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"


def _core(kind: str, plural: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType("", "v1", kind, plural, kind.lower(), namespaced, **kw)


def _in(group: str, version: str, kind: str, plural: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType(group, version, kind, plural, kind.lower(), namespaced, **kw)


_NS_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")

BUILTINS: tuple[ResourceType, ...] = (
    _core("Namespace", "namespaces", False, has_status=True, short_names=("ns",), verbs=_NS_VERBS,
          field_labels=("status.phase",)),
    _core("ConfigMap", "configmaps", short_names=("cm",)),
    _core("Secret", "secrets", field_labels=("type",)),
    _core("Service", "services", has_status=True, short_names=("svc",), categories=("all",)),
    _core("ServiceAccount", "serviceaccounts", short_names=("sa",)),
    _core("Event", "events", short_names=("ev",),
          field_labels=("involvedObject.kind", "involvedObject.name", "involvedObject.namespace",
                        "involvedObject.uid", "reason", "type", "source")),
    _core("Pod", "pods", has_status=True, short_names=("po",), categories=("all",),
          field_labels=("spec.nodeName", "status.phase")),
    _core("Endpoints", "endpoints", short_names=("ep",)),
    _core("PersistentVolumeClaim", "persistentvolumeclaims", has_status=True, short_names=("pvc",)),
    _core("Binding", "bindings", verbs=("create",)),
    _in("apps", "v1", "Deployment", "deployments", has_status=True, has_generation=True,
        short_names=("deploy",), categories=("all",)),
    _in("apps", "v1", "StatefulSet", "statefulsets", has_status=True, has_generation=True,
        short_names=("sts",), categories=("all",)),
    _in("apps", "v1", "DaemonSet", "daemonsets", has_status=True, has_generation=True,
        short_names=("ds",), categories=("all",)),
    _in("apps", "v1", "ReplicaSet", "replicasets", has_status=True, has_generation=True,
        short_names=("rs",), categories=("all",)),
    _in("apps", "v1", "ControllerRevision", "controllerrevisions"),
    _in("batch", "v1", "Job", "jobs", has_status=True, has_generation=True, categories=("all",)),
    _in("networking.k8s.io", "v1", "Ingress", "ingresses", has_status=True, has_generation=True,
        short_names=("ing",)),
    _in("coordination.k8s.io", "v1", "Lease", "leases"),
    _in("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    _in("events.k8s.io", "v1", "Event", "events", short_names=("ev",)),
    _in("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _in("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _in("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _in("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _in("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
        has_status=True, has_generation=True, short_names=("crd", "crds"),
        categories=("api-extensions",)),
)


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key giving kube's version priority: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > others."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)  # non-kube-like versions sort last, alphabetically
    major = int(m.group(1))
    stage = {"alpha": 2, "beta": 1, None: 0}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, "")


class Registry:
    """(group, version) -> plural -> ResourceType, with discovery ordering."""

    def __init__(self, types: Iterable[ResourceType] = BUILTINS) -> None:
        self._by_gv: dict[tuple[str, str], dict[str, ResourceType]] = {}
        self._generation = 0
        for rt in types:
            self.add(rt)

    @property
    def generation(self) -> int:
        """Bumped on every change, so caches of discovery documents know when to rebuild."""
        return self._generation

    def add(self, rt: ResourceType) -> None:
        self._by_gv.setdefault((rt.group, rt.version), {})[rt.plural] = rt
        self._generation += 1

    def remove_key(self, key: ResourceKey) -> None:
        for gv in list(self._by_gv):
            if gv[0] == key[0]:
                self._by_gv[gv].pop(key[1], None)
                if not self._by_gv[gv]:
                    del self._by_gv[gv]
        self._generation += 1

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gv.get((group, version), {}).get(plural)

    def api_versions(self, key: ResourceKey) -> frozenset[str]:
        """Every apiVersion the resource ``key`` (group, plural) is served in."""
        return frozenset(res[key[1]].api_version for (g, _v), res in self._by_gv.items()
                         if g == key[0] and key[1] in res)

    def resources(self, group: str, version: str) -> list[ResourceType] | None:
        found = self._by_gv.get((group, version))
        return None if found is None else sorted(found.values(), key=lambda r: r.plural)

    def groups(self) -> dict[str, list[str]]:
        """group -> served versions, preferred first ("" is the core group)."""
        out: dict[str, list[str]] = {}
        for group, version in self._by_gv:
            out.setdefault(group, []).append(version)
        for versions in out.values():
            versions.sort(key=version_priority)
        return out

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        for (g, _v), res in self._by_gv.items():
            if g == group:
                for rt in res.values():
                    if rt.kind == kind:
                        return rt
        return None

    def preferred(self, key: ResourceKey) -> ResourceType | None:
        versions = self.groups().get(key[0], [])
        for v in versions:
            rt = self.get(key[0], v, key[1])
            if rt is not None:
                return rt
        return None
