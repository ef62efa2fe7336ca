"""What a test run makes on real clusters, taking it away, and the check that nothing stayed.

``make test-integration`` may run against a user's own pair, which holds other syncers'
copies and other people's work. So on the ``real`` substrate (tests/substrate.py):

* Everything the suites create that outlives a request carries the label
  ``RUN_LABEL=<RUN_ID>``: namespaces (``tests.e2e.harness.ensure_namespace`` and the conformance
  ``namespace`` fixture), KRMSyncers (``put_syncer``), CRDs, and the identities
  ``Cluster.add_user`` makes (a ServiceAccount in ``e2e-users`` and a ClusterRoleBinding
  ``e2e-<name>``). Every name ``unique()`` hands out, or a namespace is made under, is noted
  (:func:`note`): the destination namespaces the syncer creates carry its own label, not ours.
* After every test, pass or fail (an autouse fixture in tests/conftest.py), :func:`clean`
  deletes on BOTH clusters, in this order: the KRMSyncers in the test's namespaces or with the
  run label (so that nothing syncs any more; a finalizer that holds one is removed), the CRDs
  named after the test's names, the identities (labelled), then the test's namespaces.
  Objects of module- or session-scoped fixtures stay until the run's end.
* At the end of the session (the ``real_pair`` fixture's teardown, which pytest runs on
  Ctrl-C too), :func:`finish` lists what is left (:func:`leftovers`), deletes it, and fails the
  run naming every object found.

Names are random (``unique()``: a prefix and 6 hex digits), so a name noted here never
belongs to anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo
from ray_syncer.kube.config import load_kubeconfig_text

RUN_LABEL = "test.krmsyncer.gkelabs.io/run"
# A label value: at most 63 characters of [-A-Za-z0-9_.]; set it to find a run's objects.
RUN_ID = os.environ.get("KRMSYNCER_TEST_RUN_ID") or (
    f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
)
USERS_NS = "e2e-users"  # where a real cluster's test identities (ServiceAccounts) live

KRMSYNCERS = ResourceInfo("syncer.gkelabs.io", "v1alpha1", "KRMSyncer", "krmsyncers", True)
NAMESPACES = ResourceInfo("", "v1", "Namespace", "namespaces", False, has_status=True)
CRDS = ResourceInfo("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
                    "customresourcedefinitions", False, has_status=True)
BINDINGS = ResourceInfo("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding",
                        "clusterrolebindings", False)
ACCOUNTS = ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", True)
KRMSYNCER_CRD = "krmsyncers.syncer.gkelabs.io"  # the suites' prerequisite, removed last

_test_names: set[str] = set()
_run_names: set[str] = set()  # what real-substrate tests noted: the session-end check's list


def labels() -> dict[str, str]:
    """The label every object a test run creates carries."""
    return {RUN_LABEL: RUN_ID}


def selector() -> str:
    return f"{RUN_LABEL}={RUN_ID}"


def labelled(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` (an object's metadata) with the run label added."""
    return {**meta, "labels": {**(meta.get("labels") or {}), **labels()}}


def note(name: str) -> str:
    """Remember a name the current test made (a namespace, or one that may become one)."""
    _test_names.add(name)
    return name


def begin_test() -> None:
    _test_names.clear()


def end_test(*, real: bool) -> set[str]:
    """The names the test made; kept for the session-end check when it ran on real clusters."""
    names = set(_test_names)
    _test_names.clear()
    if real:
        _run_names.update(names)
    return names


def run_names() -> set[str]:
    return set(_run_names)


def client_for(kubeconfig: str) -> KubeClient:
    return KubeClient(load_kubeconfig_text(kubeconfig, allow_files=True, allow_exec=True))


async def _items(client: KubeClient, res: ResourceInfo, *, namespace: str | None = None,
                 label_selector: str | None = None) -> list[dict[str, Any]]:
    try:
        items, _ = await client.list_all(res, namespace=namespace, label_selector=label_selector)
    except ApiError as exc:
        if exc.not_found:  # the kind is not served (no KRMSyncer CRD, no RBAC API in memory)
            return []
        raise
    return items


def _ours(obj: dict[str, Any]) -> bool:
    return (obj["metadata"].get("labels") or {}).get(RUN_LABEL) == RUN_ID


def _named(name: str, names: set[str]) -> bool:
    """A CRD whose name has a noted name as one of its dot-separated parts (``widgets.g-1a2b3c.example.com``)."""
    return any(part in names for part in name.split("."))


async def _delete(client: KubeClient, res: ResourceInfo, namespace: str | None, name: str) -> None:
    try:
        await client.delete(res, namespace=namespace, name=name, propagation_policy="Background")
    except ApiError as exc:
        if not (exc.not_found or exc.conflict):
            raise


async def _gone(client: KubeClient, res: ResourceInfo, namespace: str | None, name: str) -> bool:
    try:
        await client.get(res, namespace=namespace, name=name)
    except ApiError as exc:
        if exc.not_found:
            return True
        raise
    return False


async def _remove_syncers(client: KubeClient, names: set[str], *, timeout: float) -> None:
    syncers = [o for o in await _items(client, KRMSYNCERS)
               if o["metadata"]["namespace"] in names or _ours(o)]
    for o in syncers:
        await _delete(client, KRMSYNCERS, o["metadata"]["namespace"], o["metadata"]["name"])
    deadline = time.monotonic() + timeout
    for o in syncers:
        ns, name = o["metadata"]["namespace"], o["metadata"]["name"]
        while not await _gone(client, KRMSYNCERS, ns, name):
            if time.monotonic() > deadline:
                # A finalizer no controller will lift (ours sets none): take it off.
                with contextlib.suppress(ApiError):
                    await client.patch(KRMSYNCERS, namespace=ns, name=name,
                                       body={"metadata": {"finalizers": None}})
                break
            await asyncio.sleep(0.2)


async def clean_cluster(client: KubeClient, names: Iterable[str], *, final: bool = False,
                        syncer_timeout: float = 10.0) -> None:
    """Delete what a test made on one cluster (``names``; its KRMSyncers and identities also by
    the label), KRMSyncers first. ``final``: the end of the run, when everything with the run's
    label goes, also what module- and session-scoped fixtures made (a CRD kept for a module's
    tests, the shared ``e2e-users`` namespace, the KRMSyncer CRD if this run installed it)."""
    wanted = set(names)
    await _remove_syncers(client, wanted, timeout=syncer_timeout)
    for crd in await _items(client, CRDS):
        name = crd["metadata"]["name"]
        if (final and _ours(crd)) or (name != KRMSYNCER_CRD and _named(name, wanted)):
            await _delete(client, CRDS, None, name)
    for b in await _items(client, BINDINGS, label_selector=selector()):
        await _delete(client, BINDINGS, None, b["metadata"]["name"])
    for sa in await _items(client, ACCOUNTS, namespace=USERS_NS, label_selector=selector()):
        await _delete(client, ACCOUNTS, USERS_NS, sa["metadata"]["name"])
    spaces = set(wanted)
    if final:
        spaces |= {n["metadata"]["name"]
                   for n in await _items(client, NAMESPACES, label_selector=selector())}
    else:
        spaces.discard(USERS_NS)  # shared by the tests; the run's end removes it
    for ns in sorted(spaces):
        await _delete(client, NAMESPACES, None, ns)


async def leftovers(client: KubeClient, names: Iterable[str], *, wait_s: float = 0.0,
                    terminating_counts: bool = True) -> list[str]:
    """What a run left on one cluster: objects with its label, and namespaces and CRDs it
    named. An object being deleted counts while ``terminating_counts`` (a cluster whose
    namespace controller finishes deletions); ``wait_s`` gives those time to go first.
    The suites' shared fixtures are not counted, as ``finish`` removes them last: the
    KRMSyncer CRD and the ``e2e-users`` namespace (the identities in it are counted)."""
    wanted = set(names)
    deadline = time.monotonic() + wait_s
    while True:
        found: list[tuple[str, dict[str, Any]]] = []
        for o in await _items(client, KRMSYNCERS):
            if o["metadata"]["namespace"] in wanted or _ours(o):
                found.append((f"KRMSyncer {o['metadata']['namespace']}/{o['metadata']['name']}", o))
        for n in await _items(client, NAMESPACES):
            if n["metadata"]["name"] != USERS_NS and (n["metadata"]["name"] in wanted or _ours(n)):
                found.append((f"Namespace {n['metadata']['name']}", n))
        for c in await _items(client, CRDS):
            name = c["metadata"]["name"]
            if name != KRMSYNCER_CRD and (_ours(c) or _named(name, wanted)):
                found.append((f"CustomResourceDefinition {name}", c))
        for b in await _items(client, BINDINGS, label_selector=selector()):
            found.append((f"ClusterRoleBinding {b['metadata']['name']}", b))
        for sa in await _items(client, ACCOUNTS, namespace=USERS_NS, label_selector=selector()):
            found.append((f"ServiceAccount {USERS_NS}/{sa['metadata']['name']}", sa))
        left = [what + (" (terminating)" if o["metadata"].get("deletionTimestamp") else "")
                for what, o in found
                if terminating_counts or not o["metadata"].get("deletionTimestamp")]
        if not any("(terminating)" in w for w in left) or time.monotonic() > deadline:
            return sorted(left)
        await asyncio.sleep(1.0)


def clean(kubeconfigs: dict[str, str], names: Iterable[str]) -> None:
    """:func:`clean_cluster` on each cluster (``{name: kubeconfig text}``), after a test."""
    asyncio.run(_each(kubeconfigs, lambda c: clean_cluster(c, names)))


async def _each(kubeconfigs: dict[str, str], work: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kubeconfig in kubeconfigs.items():
        async with client_for(kubeconfig) as c:
            out[name] = await work(c)
    return out


class LeftoversError(AssertionError):
    pass


def finish(kubeconfigs: dict[str, str], names: Iterable[str], *,
           deletes_complete: dict[str, bool] | None = None, wait_s: float = 60.0) -> None:
    """The end of a run on real clusters: list what is left, delete it, and fail naming it.

    ``deletes_complete``: per cluster, whether a namespace controller finishes deletions
    (envtest may run without one); where it does not, a terminating namespace is not counted.
    """
    names = set(names)
    complete = deletes_complete or {}

    async def left(c: KubeClient, cluster: str) -> list[str]:
        done = complete.get(cluster, True)
        return await leftovers(c, names, wait_s=wait_s if done else 0.0, terminating_counts=done)

    found: dict[str, list[str]] = {}
    for cluster, kubeconfig in kubeconfigs.items():
        found[cluster] = asyncio.run(_one(kubeconfig, lambda c, k=cluster: left(c, k)))
    # Take it away whatever was found, then say what the tests had left.
    asyncio.run(_each(kubeconfigs, lambda c: clean_cluster(c, names, final=True)))
    if any(found.values()):
        lines = [f"  {cluster}: {what}" for cluster, whats in found.items() for what in whats]
        raise LeftoversError(
            f"the test run {RUN_ID} left {sum(map(len, found.values()))} object(s) on the real "
            "clusters (removed now; a test's cleanup missed them):\n" + "\n".join(lines)
        )


async def _one(kubeconfig: str, work: Any) -> Any:
    async with client_for(kubeconfig) as c:
        return await work(c)


def describe() -> str:
    """One line for the terminal: how to find this run's objects."""
    return f"objects of this run carry the label {selector()}"


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
assert len(RUN_ID) <= 63 and _LABEL_VALUE.match(RUN_ID), f"bad KRMSYNCER_TEST_RUN_ID {RUN_ID!r}"
