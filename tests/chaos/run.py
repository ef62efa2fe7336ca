"""One seeded chaos run: the full operator on Ray, two in-memory clusters, churn and faults at once.

Why it exists: docs/design.md §4 says the safety invariants hold *under every fault*;
this is where that is checked with the faults combined, as on a bad day.

While the source churns (creates, updates, deletes of ConfigMaps in three
namespaces and of a custom resource with status), all of these happen:

* 20% of destination requests answered 429 (Retry-After) or 500;
* the source's watches dropped every ~2 s, and the event window compacted
  (forced 410 Gone) every ~5 s;
* a shard actor killed every ~10 s (every ~5 s in the short form), the
  supervisor actor killed once;
* a destination outage (30 s long form; 5 s short form), and a second one over
  the last 3 s of churn, so changes are still pending when faults stop;
* the kubeconfig Secret rotated to a new token once (the old one revoked 2 s later);
* the KRMSyncer edited: a rule added, later removed;
* pre-existing *unowned* destination objects with the names of some source
  objects (conflictPolicy Skip).

Then faults stop and the checks run against the end state *and* the
destination's request log (see ``Verdict``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from ray_syncer.engine.transform import MANAGED_BY_LABEL, managed_by_value
from ray_syncer.fleet import testing as fleet_testing
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo
from ray_syncer.kube.config import load_kubeconfig_text
from ray_syncer.operator.reconciler import KRMSYNCER_RES, SECRET_RES
from tests.badinput.world import install_crd, widget_crd
from tests.e2e.conftest import _install_crd
from tests.e2e.harness import Cluster, Clusters, operator

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", True, has_status=False)
NS = ResourceInfo("", "v1", "Namespace", "namespaces", False, has_status=True)
GROUP = "chaos.example.com"
WIDGET = ResourceInfo(GROUP, "v1", "Widget", "widgets", True, has_status=True)
HOME = "chaos-home"
SYNCER = "chaos"
DATA_NS = ("chaos-a", "chaos-b", "chaos-c")
WIDGET_NS = ("chaos-a", "chaos-b")
EXTRA_NS = "chaos-x"  # the namespace of the rule added and removed mid-run


@dataclass(frozen=True)
class Profile:
    duration_s: float
    outage_s: float
    kill_every_s: float
    names_per_ns: int

    @staticmethod
    def short() -> Profile:
        return Profile(duration_s=24.0, outage_s=5.0, kill_every_s=5.0, names_per_ns=8)

    @staticmethod
    def long() -> Profile:
        return Profile(duration_s=150.0, outage_s=30.0, kill_every_s=10.0, names_per_ns=20)


@dataclass
class Figures:
    """What the run did; printed at the end and in docs/reliability.md."""

    seed: int
    creates: int = 0
    updates: int = 0
    deletes: int = 0
    status_updates: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    dest_requests: int = 0
    dest_injected_errors: int = 0
    converge_s: float = 0.0
    owned_at_end: int = 0
    status_writes: int = 0
    events: int = 0
    elapsed_s: float = 0.0

    def fault(self, name: str) -> None:
        self.faults[name] = self.faults.get(name, 0) + 1

    def render(self) -> str:
        faults = ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items()))
        return (
            f"seed={self.seed} source writes: {self.creates} creates, {self.updates} updates, "
            f"{self.deletes} deletes, {self.status_updates} status updates; faults: {faults}; "
            f"destination requests {self.dest_requests} ({self.dest_injected_errors} answered "
            f"429/500); converged {self.converge_s:.1f}s after faults stopped; "
            f"{self.owned_at_end} owned objects at the end; {self.status_writes} status writes "
            f"and {self.events} Events in {self.elapsed_s:.0f}s"
        )


@dataclass
class History:
    """Source deletes per (plural, ns, name) with the time each was issued."""

    deletes: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)

    def deleted(self, plural: str, ns: str, name: str, at: float) -> None:
        self.deletes.setdefault((plural, ns, name), []).append(at)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _syncer(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "syncer.gkelabs.io/v1alpha1",
        "kind": "KRMSyncer",
        "metadata": {"name": SYNCER, "namespace": HOME},
        "spec": {
            "rules": rules,
            "destination": {"clusterConfig": {"kubeConfigSecretRef": {"name": "dest"}}},
            "conflictPolicy": "Skip",
        },
    }


BASE_RULES: list[dict[str, Any]] = [
    {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": list(DATA_NS)},
    {"group": GROUP, "version": "v1", "kind": "Widget", "namespaces": list(WIDGET_NS),
     "syncStatus": True},
]
EXTRA_RULE = {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [EXTRA_NS]}


class ChaosRun:
    def __init__(self, *, seed: int, profile: Profile, src: Any, dst: Any) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.profile = profile
        self.src_server, self.dst_server = src, dst
        self.figures = Figures(seed=seed)
        self.history = History()
        self.unowned: dict[tuple[str, str], str] = {}  # (ns, name) -> resourceVersion
        self.tokens: list[str] = []
        self.src = KubeClient(load_kubeconfig_text(src.kubeconfig()))
        self.dst = KubeClient(load_kubeconfig_text(dst.kubeconfig()))
        self.managed_by = managed_by_value(HOME, SYNCER)
        self.faulting = True
        self.conflicts_missing: list[str] = []
        self.quiet_writes: list[str] = []
        self.synced_condition = ""

    async def close(self) -> None:
        await self.src.close()
        await self.dst.close()

    # -- setup ---------------------------------------------------------------------------
    def _token(self) -> str:
        token = f"chaos-token-{self.rng.getrandbits(64):016x}"
        self.dst_server.add_user(token, user="chaos-writer")
        self.tokens.append(token)
        return token

    async def _put_secret(self, token: str) -> None:
        await self.src.apply(
            SECRET_RES,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "dest", "namespace": HOME},
                "data": {"kubeconfig": _b64(self.dst_server.kubeconfig(token=token))},
            },
            field_manager="chaos",
        )

    async def setup(self) -> None:
        crd = widget_crd("widgets", "Widget", GROUP)
        for c in (self.src, self.dst):
            for ns in (HOME, *DATA_NS, EXTRA_NS):
                with contextlib.suppress(ApiError):
                    await c.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            await install_crd(c, crd)
        await self._put_secret(self._token())
        # Some source names also exist, unowned, in the destination.
        for ns in DATA_NS:
            name = f"cm-{self.rng.randrange(self.profile.names_per_ns)}"
            obj = await self.dst.create(
                CM,
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
                 "data": {"owner": "someone-else"}},
                namespace=ns,
            )
            self.unowned[(ns, name)] = obj["metadata"]["resourceVersion"]
        # Initial source objects (about half the name space).
        for ns in DATA_NS:
            for i in range(self.profile.names_per_ns):
                if self.rng.random() < 0.5 or (ns, f"cm-{i}") in self.unowned:
                    await self._cm_write(ns, f"cm-{i}")
        for ns in WIDGET_NS:
            for i in range(self.profile.names_per_ns // 2):
                await self._widget_write(ns, f"w-{i}")
        await self._cm_write(EXTRA_NS, "extra-0")
        await self.src.apply(KRMSYNCER_RES, _syncer(BASE_RULES), field_manager="chaos")

    # -- churn ---------------------------------------------------------------------------
    async def _cm_write(self, ns: str, name: str) -> None:
        existed = await self._exists(CM, ns, name)
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns},
            "data": {"v": f"{self.rng.getrandbits(32):08x}", "seq": str(self.figures.updates)},
        }
        await self.src.apply(CM, body, field_manager="chaos")
        if existed:
            self.figures.updates += 1
        else:
            self.figures.creates += 1

    async def _widget_write(self, ns: str, name: str) -> None:
        existed = await self._exists(WIDGET, ns, name)
        body = {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"size": self.rng.randrange(100)},
        }
        await self.src.apply(WIDGET, body, field_manager="chaos")
        await self.src.patch(
            WIDGET,
            namespace=ns,
            name=name,
            body={"status": {"phase": self.rng.choice(["Ready", "Pending", "Failed"]),
                             "observed": self.rng.randrange(1000)}},
            content_type="application/merge-patch+json",
            subresource="status",
        )
        self.figures.status_updates += 1
        if existed:
            self.figures.updates += 1
        else:
            self.figures.creates += 1

    async def _exists(self, res: ResourceInfo, ns: str, name: str) -> bool:
        try:
            await self.src.get(res, namespace=ns, name=name)
            return True
        except ApiError as exc:
            if exc.not_found:
                return False
            raise

    async def _delete(self, res: ResourceInfo, ns: str, name: str) -> None:
        at = time.time()
        try:
            await self.src.delete(res, namespace=ns, name=name)
        except ApiError as exc:
            if exc.not_found:
                return
            raise
        self.history.deleted(res.plural, ns, name, at)
        self.figures.deletes += 1

    async def churn(self, until: float) -> None:
        n = self.profile.names_per_ns
        while time.monotonic() < until:
            if self.rng.random() < 0.7:
                res, ns, name = CM, self.rng.choice(DATA_NS), f"cm-{self.rng.randrange(n)}"
            else:
                res, ns, name = WIDGET, self.rng.choice(WIDGET_NS), f"w-{self.rng.randrange(n // 2)}"
            try:
                if self.rng.random() < 0.25:
                    await self._delete(res, ns, name)
                elif res is CM:
                    await self._cm_write(ns, name)
                else:
                    await self._widget_write(ns, name)
            except ApiError as exc:
                if exc.status not in (409,):  # a racing write of our own: fine
                    raise
            await asyncio.sleep(self.rng.uniform(0.01, 0.06))

    # -- faults --------------------------------------------------------------------------
    async def every(self, period: float, until: float, action: Any, name: str) -> None:
        await asyncio.sleep(self.rng.uniform(0.2, period))
        while time.monotonic() < until:
            await asyncio.to_thread(action)
            self.figures.fault(name)
            await asyncio.sleep(period * self.rng.uniform(0.7, 1.3))

    def _kill_shard(self) -> None:
        shards = [a for a in fleet_testing.named_actors() if a.startswith((f"{HOME}/", f"host/{HOME}/"))]
        if shards:
            with contextlib.suppress(ValueError):
                fleet_testing.kill_actor(self.rng.choice(sorted(shards)), restart=True)

    async def _rotate(self) -> None:
        """New token in the Secret; the old one is revoked 2 s later, as a real rotation does."""
        old = self.tokens[-1]
        await self._put_secret(self._token())
        await asyncio.sleep(2.0)
        self.dst_server.server.auth.remove_token(old)
        self.figures.fault("old_token_revoked")

    async def once(self, at: float, action: Any, name: str) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        result = action()
        if asyncio.iscoroutine(result):
            await result
        self.figures.fault(name)

    async def outage(self, at: float, seconds: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        await asyncio.to_thread(self.dst_server.faults.outage, True)
        self.figures.fault("dest_outage")
        await asyncio.sleep(seconds)
        await asyncio.to_thread(self.dst_server.faults.outage, False)

    async def edit_rules(self, add_at: float, remove_at: float) -> None:
        await asyncio.sleep(max(0.0, add_at - time.monotonic()))
        await self.src.apply(KRMSYNCER_RES, _syncer([*BASE_RULES, EXTRA_RULE]), field_manager="chaos")
        self.figures.fault("rule_added")
        await asyncio.sleep(max(0.0, remove_at - time.monotonic()))
        await self.src.apply(KRMSYNCER_RES, _syncer(BASE_RULES), field_manager="chaos")
        self.figures.fault("rule_removed")

    async def chaos(self) -> None:
        p = self.profile
        start = time.monotonic()
        until = start + p.duration_s
        faults = self.dst_server.faults
        faults.error_codes = [429, 500]
        faults.retry_after = 0.2
        faults.error_rate = 0.2
        self.figures.fault("dest_error_rate_20pct")
        tasks = [
            self.churn(until),
            self.every(2.0, until, self.src_server.faults.drop_watches, "source_watch_drop"),
            self.every(5.0, until, self.src_server.faults.compact, "source_compaction_410"),
            self.every(p.kill_every_s, until, self._kill_shard, "shard_actor_kill"),
            self.once(start + p.duration_s * 0.3,
                      lambda: fleet_testing.kill_actor("supervisor", restart=True), "supervisor_kill"),
            self.outage(start + p.duration_s * 0.2, p.outage_s),
            # The last changes are made while the destination is down again: after the faults
            # stop they are still pending, so "time to converge" measures a real recovery.
            self.outage(until - 3.0, 3.0),
            self.once(start + p.duration_s * 0.5, self._rotate, "secret_rotated"),
            self.edit_rules(start + p.duration_s * 0.25, start + p.duration_s * 0.6),
        ]
        await asyncio.gather(*tasks)
        faults.reset()
        self.src_server.faults.reset()
        self.faulting = False

    # -- checks --------------------------------------------------------------------------
    async def _listing(self, client: KubeClient, res: ResourceInfo, namespaces: tuple[str, ...],
                       owned: bool | None) -> dict[tuple[str, str], dict[str, Any]]:
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for ns in namespaces:
            items, _ = await client.list_all(res, namespace=ns)
            for obj in items:
                meta = obj["metadata"]
                if meta["name"] == "kube-root-ca.crt":
                    continue
                mine = (meta.get("labels") or {}).get(MANAGED_BY_LABEL) == self.managed_by
                if owned is None or mine == owned:
                    out[(ns, meta["name"])] = obj
        return out

    async def differences(self) -> list[str]:
        """Where the destination's owned objects differ from the source (conflicts excluded)."""
        problems: list[str] = []
        for res, namespaces, fields in ((CM, DATA_NS, ("data",)), (WIDGET, WIDGET_NS, ("spec", "status"))):
            source = await self._listing(self.src, res, namespaces, None)
            dest = await self._listing(self.dst, res, namespaces, True)
            for key in self.unowned:
                source.pop(key, None)
            for key in sorted(set(source) | set(dest)):
                s, d = source.get(key), dest.get(key)
                if s is None:
                    problems.append(f"{res.kind} {key}: in destination, gone from source")
                elif d is None:
                    problems.append(f"{res.kind} {key}: missing in destination")
                else:
                    for f in fields:
                        if (s.get(f) or {}) != (d.get(f) or {}):
                            problems.append(f"{res.kind} {key}: {f} {d.get(f)} != source {s.get(f)}")
        return problems

    async def converge(self, timeout: float) -> float:
        t0 = time.monotonic()
        last: list[str] = []
        while time.monotonic() - t0 < timeout:
            last = await self.differences()
            if not last:
                return time.monotonic() - t0
            await asyncio.sleep(0.25)
        raise AssertionError(
            f"destination != source {timeout:.0f}s after faults stopped ({len(last)} differences): "
            f"{last[:8]}"
        )

    def wrong_deletes(self) -> list[str]:
        """Destination deletes with no earlier source delete of that object to justify them."""
        budget = {k: sorted(v) for k, v in self.history.deletes.items()}
        wrong: list[str] = []
        records = sorted(
            (r for r in list(self.dst_server.request_log) if r.method == "DELETE"),
            key=lambda r: r.time,
        )
        for r in records:
            parts = r.path.strip("/").split("/")
            if "namespaces" not in parts or len(parts) < 2:
                continue
            i = parts.index("namespaces")
            if len(parts) < i + 4:
                continue  # a namespace delete: never issued by the syncer
            ns, plural, name = parts[i + 1], parts[i + 2], parts[i + 3]
            if r.status not in (200, 202, 404, 409):
                continue  # answered 429/500 by the fault injector: retried, not executed
            times = budget.get((plural, ns, name), [])
            justified = next((t for t in times if t <= r.time), None)
            if justified is None:
                wrong.append(f"DELETE {ns}/{plural}/{name} at {r.time:.3f} -> {r.status}")
            else:
                times.remove(justified)
        return wrong

    async def unowned_touched(self) -> list[str]:
        touched: list[str] = []
        for (ns, name), rv in self.unowned.items():
            obj = await self.dst.get(CM, namespace=ns, name=name)
            if obj["metadata"]["resourceVersion"] != rv or obj.get("data") != {"owner": "someone-else"}:
                touched.append(f"{ns}/{name} modified")
            path = f"/api/v1/namespaces/{ns}/configmaps/{name}"
            writes = [
                f"{r.method} {r.path} -> {r.status}"
                for r in list(self.dst_server.request_log)
                if r.path == path and r.method in ("PATCH", "PUT", "DELETE")
            ]
            touched += writes
        return touched

    async def missing_conflicts(self) -> list[str]:
        """Unowned names whose source object exists but that status does not report."""
        obj = await self.src.get(KRMSYNCER_RES, namespace=HOME, name=SYNCER)
        sample = (obj.get("status") or {}).get("conflictsSample") or []
        missing = []
        for ns, name in self.unowned:
            if await self._exists(CM, ns, name) and f"{ns}/{name}" not in sample:
                missing.append(f"{ns}/{name}")
        return missing

    async def wait_synced(self, timeout: float) -> str:
        """The KRMSyncer's Synced condition once it is True (or the last one seen)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            obj = await self.src.get(KRMSYNCER_RES, namespace=HOME, name=SYNCER)
            for c in (obj.get("status") or {}).get("conditions") or []:
                if c.get("type") == "Synced":
                    last = f"{c['status']} {c['reason']}: {c.get('message', '')}"
            if last.startswith("True "):
                return last
            await asyncio.sleep(0.5)
        return last

    async def wait_conflicts(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        missing = await self.missing_conflicts()
        while missing and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            missing = await self.missing_conflicts()
        return missing

    def count_requests(self) -> None:
        log = list(self.dst_server.request_log)
        self.figures.dest_requests = len(log)
        self.figures.dest_injected_errors = sum(1 for r in log if r.status in (429, 500))
        src_log = list(self.src_server.request_log)
        status_path = KRMSYNCER_RES.path(namespace=HOME, name=SYNCER, subresource="status")
        self.figures.status_writes = sum(
            1 for r in src_log if r.method == "PATCH" and r.path == status_path
        )
        self.figures.events = sum(
            1 for r in src_log if r.method == "POST" and r.path.endswith(f"/namespaces/{HOME}/events")
        )


async def run_chaos(*, seed: int, profile: Profile, src: Any, dst: Any) -> ChaosRun:
    """Set up, run the faults, stop them and measure convergence; checks are the caller's."""
    run = ChaosRun(seed=seed, profile=profile, src=src, dst=dst)
    clusters = Clusters(
        Cluster("source", src.kubeconfig(), load_kubeconfig_text(src.kubeconfig()), src),
        Cluster("destination", dst.kubeconfig(), load_kubeconfig_text(dst.kubeconfig()), dst),
    )
    await _install_crd(clusters.source)
    await run.setup()
    # CHAOS_SHARDS_PER_HOST=N packs N shards per actor (--max-shards-per-actor); default 1.
    per_host = int(os.environ.get("CHAOS_SHARDS_PER_HOST", "1"))
    t0 = time.monotonic()
    async with operator(clusters, namespace=HOME, shards_per_host=per_host):
        await run.converge(timeout=30)
        await run.chaos()
        run.figures.converge_s = await run.converge(timeout=10)
        # No-op is free (§4.4): once converged and quiet, the destination sees no writes.
        await asyncio.sleep(1.0)
        quiet_from = time.time()
        await asyncio.sleep(3.0)
        run.quiet_writes = [
            f"{r.method} {r.path} -> {r.status}"
            for r in list(run.dst_server.request_log)
            if r.time >= quiet_from and r.method in ("POST", "PUT", "PATCH", "DELETE")
        ]
        # Status is rate-limited (one write per 2 s per syncer): give it a moment.
        run.conflicts_missing = await run.wait_conflicts(timeout=10)
        run.synced_condition = await run.wait_synced(timeout=15)
        for res, nss in ((CM, DATA_NS), (WIDGET, WIDGET_NS)):
            run.figures.owned_at_end += len(await run._listing(run.dst, res, nss, True))
        run.count_requests()
        run.figures.elapsed_s = time.monotonic() - t0
    return run
