"""The synthetic workload: source writes with sequence numbers, and the destination observer.

Why this exists: latency is measured end to end, outside the syncer, the way a
user would see it: from the moment a write to the source is acknowledged to
the moment the change is visible in a watch on the destination. Each write
embeds a global sequence number in ``data.seq``; the observer matches what it
sees in the destination against what the load generator wrote.

Coalescing is expected (a syncer may skip intermediate versions), so an update
counts as delivered when the destination shows that sequence number *or a
later one* for the same object. The load generator never has two writes to the
same object in flight, so per object the last acknowledged sequence number is
the final source content.

How it meets its neighbours: both sides use ``ray_syncer.kube.client.KubeClient``
(the product's own HTTP client) from the harness process; the syncer under test
runs in another process (``benchmarks.runner``), the servers in others again
(``benchmarks.clusters``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo, TransportError

LABEL_KEY = "ray-syncer-bench"
LABEL_VALUE = "1"
SELECTOR = LABEL_KEY  # the observer sees the engine's and the naive syncer's objects
CONFIGMAPS = ResourceInfo(
    group="",
    version="v1",
    kind="ConfigMap",
    plural="configmaps",
    namespaced=True,
    verbs=frozenset({"create", "delete", "get", "list", "patch", "update", "watch"}),
    singular="configmap",
    short_names=("cm",),
)
NAMESPACES = ResourceInfo(
    group="", version="v1", kind="Namespace", plural="namespaces", namespaced=False
)

Key = tuple[str, str]  # (namespace, name)


def namespace_names(count: int) -> list[str]:
    return [f"bench-{i:03d}" for i in range(count)]


def object_keys(*, objects: int, namespaces: int, start: int = 0) -> list[Key]:
    ns = namespace_names(namespaces)
    return [(ns[i % namespaces], f"cm-{i:06d}") for i in range(start, start + objects)]


def payload(size: int, key: Key) -> str:
    # Deterministic and cheap; the size is what matters (~1 KiB objects by default).
    base = f"{key[0]}/{key[1]}:"
    return (base * (size // len(base) + 1))[:size]


def configmap(
    key: Key, *, seq: int, payload_size: int, label_value: str = LABEL_VALUE
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": key[1], "namespace": key[0], "labels": {LABEL_KEY: label_value}},
        "data": {"seq": str(seq), "payload": payload(payload_size, key)},
    }


async def ensure_namespaces(client: KubeClient, names: Iterable[str]) -> None:
    for name in names:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        try:
            await client.create(NAMESPACES, body)
        except ApiError as exc:
            if not exc.conflict:  # 409 AlreadyExists is fine
                raise


async def run_bounded(coros: Iterable[Any], *, concurrency: int) -> None:
    """Await coroutines with at most ``concurrency`` running at once."""
    it = iter(coros)

    async def worker() -> None:
        for coro in it:
            await coro

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def retrying(fn: Any, *args: Any, attempts: int = 8, **kwargs: Any) -> Any:
    for attempt in range(attempts):
        try:
            return await fn(*args, **kwargs)
        except (TransportError, ApiError) as exc:
            if isinstance(exc, ApiError) and not exc.retryable:
                raise
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
    return None


# --------------------------------------------------------------------------- observer


@dataclass
class Observer:
    """Watches the destination; records when each sequence number becomes visible."""

    client: KubeClient
    seen: dict[Key, int] = field(default_factory=dict)
    expected: dict[Key, int] = field(default_factory=dict)  # last acknowledged source seq
    pending: dict[Key, list[tuple[int, float]]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds, in arrival order
    event_times: list[float] = field(default_factory=list)  # every ADDED/MODIFIED event
    events: int = 0
    restarts: int = 0
    behind: set[Key] = field(default_factory=set)
    # With trace=True (--breakdown): when each seq was acknowledged by the source and first
    # became visible in the destination, so the syncer's own timestamps can be matched to them.
    trace: bool = False
    acked: dict[int, float] = field(default_factory=dict)
    visible: dict[int, float] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="bench-observer")
        await asyncio.wait_for(self._ready.wait(), 120)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def reset_measurements(self) -> None:
        self.latencies = []
        self.event_times = []
        self.events = 0
        self.acked = {}
        self.visible = {}

    def forget(self, keys: Iterable[Key], now: float) -> None:
        """The destination was emptied of ``keys``: each is behind again, from ``now``."""
        for key in keys:
            self.seen.pop(key, None)
            if key in self.expected:
                self.behind.add(key)
                self.pending[key] = [(self.expected[key], now)]

    # -- load generator side
    def expect(self, key: Key, seq: int, acked_at: float) -> None:
        self.expected[key] = seq
        if self.trace:
            self.acked[seq] = acked_at
        if self.seen.get(key, -1) >= seq:
            # Visible before the source's answer reached us: no measurable delay.
            self.latencies.append(0.0)
            return
        self.behind.add(key)
        self.pending.setdefault(key, []).append((seq, acked_at))

    # -- destination side
    def _saw(self, key: Key, seq: int, now: float) -> None:
        if seq > self.seen.get(key, -1):
            self.seen[key] = seq
        waiting = self.pending.get(key)
        if waiting:
            keep = []
            for s, t in waiting:
                if s <= seq:
                    self.latencies.append(now - t)
                else:
                    keep.append((s, t))
            if keep:
                self.pending[key] = keep
            else:
                del self.pending[key]
        if key in self.behind and self.seen.get(key, -1) >= self.expected.get(key, -1):
            self.behind.discard(key)
            if not self.behind:
                self._changed.set()

    async def _run(self) -> None:
        rv = ""
        while True:
            try:
                if not rv:
                    items, rv = await self.client.list_all(CONFIGMAPS, label_selector=SELECTOR)
                    now = time.monotonic()
                    for obj in items:
                        self._record(obj, now, count=False)
                    self._ready.set()
                async for ev in self.client.watch(
                    CONFIGMAPS,
                    label_selector=SELECTOR,
                    resource_version=rv,
                    timeout_seconds=300,
                    idle_timeout=600,
                ):
                    obj = ev.get("object") or {}
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if ev.get("type") in ("ADDED", "MODIFIED"):
                        self._record(obj, time.monotonic(), count=True)
                self.restarts += 1
            except ApiError as exc:
                self.restarts += 1
                if exc.gone:
                    rv = ""
                else:
                    await asyncio.sleep(0.2)
            except TransportError:
                self.restarts += 1
                await asyncio.sleep(0.2)

    def _record(self, obj: dict[str, Any], now: float, *, count: bool) -> None:
        meta = obj.get("metadata") or {}
        try:
            seq = int((obj.get("data") or {}).get("seq", -1))
        except ValueError:
            return
        if count:
            self.events += 1
            self.event_times.append(now)
            if self.trace:
                self.visible.setdefault(seq, now)
        self._saw((meta.get("namespace", ""), meta.get("name", "")), seq, now)

    async def wait_converged(self, timeout: float) -> float | None:
        """Seconds until the destination shows every key's last source seq; None on timeout."""
        start = time.monotonic()
        deadline = start + timeout
        while self.behind:
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 1.0))
        return time.monotonic() - start


# --------------------------------------------------------------------------- load generator


@dataclass
class LoadGenerator:
    """Writes to the source: bulk creates, and updates at a fixed rate."""

    client: KubeClient
    observer: Observer | None
    payload_size: int = 1024
    seq: int = 0
    label_value: str = LABEL_VALUE
    keys: list[Key] = field(default_factory=list)
    writes: int = 0
    errors: int = 0
    _busy: set[Key] = field(default_factory=set)

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def create(self, keys: list[Key], *, concurrency: int = 32) -> float:
        """Create (apply) ``keys`` in the source; returns the seconds it took."""
        start = time.monotonic()

        async def one(key: Key) -> None:
            seq = self._next_seq()
            await retrying(
                self.client.apply,
                CONFIGMAPS,
                configmap(
                    key, seq=seq, payload_size=self.payload_size, label_value=self.label_value
                ),
                field_manager="bench-loadgen",
            )
            self.writes += 1
            if self.observer is not None:
                self.observer.expect(key, seq, time.monotonic())

        await run_bounded((one(k) for k in keys), concurrency=concurrency)
        self.keys.extend(keys)
        return time.monotonic() - start

    async def _update(self, key: Key) -> None:
        seq = self._next_seq()
        try:
            await self.client.patch(
                CONFIGMAPS,
                namespace=key[0],
                name=key[1],
                body={"data": {"seq": str(seq)}},
                content_type="application/merge-patch+json",
            )
        except (ApiError, TransportError):
            self.errors += 1
            return
        finally:
            self._busy.discard(key)
        self.writes += 1
        if self.observer is not None:
            self.observer.expect(key, seq, time.monotonic())

    async def churn(
        self, *, rate: float, duration: float, concurrency: int = 64, rng: random.Random
    ) -> dict[str, Any]:
        """Update random objects at ``rate``/s for ``duration`` s (never two in flight per object).

        Returns the offered and achieved rates; the achieved rate can fall short
        when the source itself cannot take more (that is reported, not hidden).
        """
        sem = asyncio.Semaphore(concurrency)
        tasks: set[asyncio.Task[None]] = set()
        start = time.monotonic()
        writes_before = self.writes
        errors_before = self.errors
        issued = 0
        total = int(rate * duration)
        interval = 1.0 / rate

        async def guarded(key: Key) -> None:
            try:
                await self._update(key)
            finally:
                sem.release()

        for i in range(total):
            due = start + i * interval
            delay = due - time.monotonic()
            if delay > 0.002:
                await asyncio.sleep(delay)
            await sem.acquire()
            key = rng.choice(self.keys)
            tries = 0
            while key in self._busy and tries < 20:
                key = rng.choice(self.keys)
                tries += 1
            if key in self._busy:
                sem.release()
                continue
            self._busy.add(key)
            t = asyncio.create_task(guarded(key))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            issued += 1
            if time.monotonic() - start > duration * 1.5:
                break  # the source cannot keep up; stop instead of stretching the run
        if tasks:
            await asyncio.gather(*list(tasks))
        elapsed = time.monotonic() - start
        done = self.writes - writes_before
        return {
            "offered_rate_per_s": rate,
            "achieved_rate_per_s": done / elapsed if elapsed > 0 else 0.0,
            "source_updates": done,
            "source_errors": self.errors - errors_before,
            "elapsed_s": elapsed,
        }
