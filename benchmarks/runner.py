"""The syncer under test, in its own process: the engine's Shard, the naive baseline, or the ceiling.

Why this exists: the thing being measured must own its process, so that its
memory (RSS/USS from /proc, tracemalloc) and CPU are its own, and so that it
does not share a GIL with the API servers or with the harness's load generator
and observer. A "restart" is literally a new process.

How it meets its neighbours: the harness (``benchmarks.scenarios``) starts a
``Runner`` and sends it commands over a pipe; the runner builds
``ray_syncer.kube.client.KubeClient`` instances from the kubeconfig files that
``benchmarks.clusters`` wrote, and runs ``ray_syncer.engine.shard.Shard`` with
the ``EngineOptions`` given in the command (or ``benchmarks.naive``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import multiprocessing as mp
import threading
import time
import tracemalloc
from multiprocessing.connection import Connection
from typing import Any

SHARD_UNAVAILABLE = "engine Shard (ray_syncer.engine.shard) is not importable yet"


def engine_available() -> str | None:
    """None when the engine's Shard can be imported, else why not."""
    try:
        from ray_syncer.engine.shard import Shard  # noqa: F401
    except Exception as exc:
        return f"{SHARD_UNAVAILABLE}: {type(exc).__name__}: {exc}"
    return None


def _main(conn: Connection) -> None:
    asyncio.run(_Serve(conn).loop())


class _Serve:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.shard: Any = None
        self.shard_task: asyncio.Task[None] | None = None
        self.clients: list[Any] = []
        self.naive: Any = None
        self.floor: Any = None
        self.fleet: _Fleet | None = None
        self.tracer: _Tracer | None = None

    async def loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            cmd, arg = await loop.run_in_executor(None, self.conn.recv)
            try:
                if cmd == "exit":
                    await self._stop()
                    self.conn.send(("ok", None))
                    return
                result = await getattr(self, f"cmd_{cmd}")(**arg)
                self.conn.send(("ok", result))
            except Exception as exc:
                self.conn.send(("error", f"{type(exc).__name__}: {exc}"))

    async def _client(self, path: str, max_connections: int = 64) -> Any:
        from ray_syncer.kube.client import KubeClient
        from ray_syncer.kube.config import load_default

        c = KubeClient(load_default(kubeconfig=path), max_connections=max_connections)
        self.clients.append(c)
        return c

    async def cmd_gc(self) -> None:
        gc.collect()

    async def cmd_warm(self) -> None:
        # Import everything first, so memory measured afterwards is the engine's own growth.
        import benchmarks.naive  # noqa: F401
        import ray_syncer.kube.client

        with contextlib.suppress(Exception):
            import ray_syncer.engine.shard  # noqa: F401
        gc.collect()

    async def cmd_traced(self, top: int = 10) -> dict[str, Any]:
        """Live Python heap allocated since tracing started, and where (by line)."""
        gc.collect()
        if not tracemalloc.is_tracing():
            return {"current": 0, "peak": 0, "top": []}
        cur, peak = tracemalloc.get_traced_memory()
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        stats = snap.statistics("lineno")[:top]
        return {
            "current": cur,
            "peak": peak,
            "top": [
                {
                    "where": f"{s.traceback[0].filename.rsplit('/', 2)[-1]}:{s.traceback[0].lineno}",
                    "bytes": s.size,
                    "count": s.count,
                }
                for s in stats
            ],
        }

    async def cmd_engine(
        self,
        *,
        source_kubeconfig: str,
        dest_kubeconfig: str,
        selector: str,
        options: dict[str, Any],
        trace_memory: bool = False,
        trace: bool = False,
        ray: bool = False,
    ) -> None:
        from ray_syncer.engine.options import EngineOptions
        from ray_syncer.engine.shard import Shard
        from ray_syncer.engine.spec import ShardSpec

        spec = ShardSpec(
            syncer_namespace="bench",
            syncer_name="bench",
            group="",
            version="v1",
            kind="ConfigMap",
            label_selector=selector,
            source_cluster="bench-source",
        )
        opts = EngineOptions(**options)
        if ray:
            self.fleet = await _Fleet.start(spec, source_kubeconfig=source_kubeconfig,
                                            dest_kubeconfig=dest_kubeconfig, options=opts)
            return
        if trace:
            self.tracer = _Tracer.install()
        src = await self._client(source_kubeconfig)
        dst = await self._client(dest_kubeconfig, max_connections=max(64, opts.max_in_flight))
        gc.collect()
        if trace_memory:
            tracemalloc.start()
        self.shard = Shard(spec, source=src, dest=dst, options=opts)
        if self.tracer is not None:
            self.tracer.watch(self.shard)
        self.shard_task = asyncio.create_task(self.shard.run(), name="bench-shard")

    async def cmd_floor(
        self, *, source_kubeconfig: str, dest_kubeconfig: str, selector: str, trace: bool = False
    ) -> None:
        from benchmarks.floor import FloorCopier

        self.floor = FloorCopier(source_kubeconfig=source_kubeconfig,
                                 dest_kubeconfig=dest_kubeconfig, selector=selector, trace=trace)
        self.floor.start()

    async def cmd_traces(self) -> list[tuple[float, ...]]:
        """Per write since the last call: (seq, event, dispatched, sent, answered), monotonic s.

        The floor has no queue between dispatch and send: its dispatched == sent.
        """
        if self.floor is not None:
            return [(q, e, s, s, d) for q, e, s, d in self.floor.take_traces()]
        return self.tracer.take() if self.tracer is not None else []

    async def cmd_naive(
        self, *, source_kubeconfig: str, dest_kubeconfig: str, selector: str
    ) -> None:
        from benchmarks.naive import NaiveSyncer

        self.naive = NaiveSyncer(
            source_kubeconfig=source_kubeconfig, dest_kubeconfig=dest_kubeconfig, selector=selector
        )
        self.naive.start()

    async def cmd_health(self) -> dict[str, Any]:
        if self.fleet is not None:
            return self.fleet.health()
        if self.floor is not None:
            return dict(self.floor.health())
        if self.naive is not None:
            return dict(self.naive.health())
        if self.shard is None:
            return {}
        if (
            self.shard_task is not None
            and self.shard_task.done()
            and not self.shard_task.cancelled()
        ):
            exc = self.shard_task.exception()
            if exc is not None:
                raise RuntimeError(f"Shard.run() ended with {type(exc).__name__}: {exc}")
        h = self.shard.health()
        d = dataclasses.asdict(h)
        d["state"] = getattr(h.state, "value", str(h.state))
        return d

    async def _stop(self) -> None:
        if self.fleet is not None:
            with contextlib.suppress(Exception):
                await self.fleet.stop()
            self.fleet = None
        if self.shard is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.shard.stop(), 30)
        if self.shard_task is not None:
            self.shard_task.cancel()
            with contextlib.suppress(BaseException):
                await self.shard_task
        if self.naive is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.naive.stop)
        if self.floor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.floor.stop)
        for c in self.clients:
            with contextlib.suppress(Exception):
                await c.close()
        self.clients = []

    async def cmd_stop(self) -> dict[str, Any]:
        h = await self.cmd_health()
        await self._stop()
        return h

    async def cmd_ceiling(
        self,
        *,
        dest_kubeconfig: str,
        namespace: str,
        objects: int,
        payload_size: int,
        concurrency: int,
        duration: float,
        seq_start: int,
    ) -> dict[str, Any]:
        """Precomputed server-side applies straight at the destination: its raw write capacity."""
        import orjson

        from benchmarks.workload import CONFIGMAPS, configmap

        client = await self._client(dest_kubeconfig, max_connections=max(concurrency, 1))
        keys = [(namespace, f"ceil-{i:05d}") for i in range(objects)]
        # Pre-encode one body per object with a placeholder, so the timed loop only splices bytes.
        marker = "SEQ_PLACEHOLDER"
        templates = []
        for k in keys:
            # Labelled so the harness's destination watch sees them: the same watch fan-out
            # cost the server pays in every measured scenario (the engine never syncs these).
            raw = orjson.dumps(
                configmap(k, seq=0, payload_size=payload_size, label_value="ceiling")
            )
            raw = raw.replace(b'"seq":"0"', f'"seq":"{marker}"'.encode())
            head, tail = raw.split(marker.encode())
            templates.append((CONFIGMAPS.path(namespace=k[0], name=k[1]), head, tail))
        params = {"fieldManager": "bench-ceiling", "force": "true"}
        counter = iter(range(seq_start, seq_start + 10**9))
        done = 0
        errors = 0
        stop_at = time.monotonic() + duration

        async def worker() -> None:
            nonlocal done, errors
            while time.monotonic() < stop_at:
                seq = next(counter)
                path, head, tail = templates[seq % len(templates)]
                try:
                    await client.request(
                        "PATCH",
                        path,
                        params=params,
                        body=head + str(seq).encode() + tail,
                        content_type="application/apply-patch+yaml",
                    )
                    done += 1
                except Exception:
                    errors += 1

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - start
        await client.close()
        self.clients.remove(client)
        return {
            "writes": done,
            "errors": errors,
            "elapsed_s": elapsed,
            "rate_per_s": done / elapsed,
        }


class _Fleet:
    """The product as ``ray-syncer run`` runs it: a local Ray (``fleet.local.connect``, its
    defaults), the supervisor actor and a shard host actor holding the shard (``--product ray``).

    Health comes from the supervisor's report, asked for once a second in the background
    (the operator asks every 2 s), so the harness's polling adds no Ray calls of its own.
    """

    def __init__(self, backend: Any, desired: dict[str, Any], shard_id: str) -> None:
        self.backend, self.desired, self.shard_id = backend, desired, shard_id
        self.report: dict[str, Any] = {}
        self.task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, spec: Any, *, source_kubeconfig: str, dest_kubeconfig: str,
                    options: Any) -> _Fleet:  # fmt: skip
        import os

        from ray_syncer.fleet import actors, local
        from ray_syncer.fleet.plan import DesiredShard
        from ray_syncer.kube.config import load_default

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        await asyncio.to_thread(local.connect, None, adopt_orphans=True, log_to_driver=False)
        desired = {spec.shard_id: DesiredShard(
            spec=spec, revision="1", source=load_default(kubeconfig=source_kubeconfig),
            dest=load_default(kubeconfig=dest_kubeconfig), options=options)}
        fleet = cls(actors.RayBackend(actors.ActorSettings()), desired, spec.shard_id)
        await fleet.poll()
        fleet.task = asyncio.create_task(fleet.loop())
        return fleet

    async def poll(self) -> None:
        report = await self.backend.apply(self.desired)
        h = report.health.get(self.shard_id)
        if h is not None:
            d = dataclasses.asdict(h)
            d["state"] = getattr(h.state, "value", str(h.state))
            self.report = d

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                await self.poll()

    def health(self) -> dict[str, Any]:
        return dict(self.report)

    async def stop(self) -> None:
        from ray_syncer.fleet import local

        if self.task is not None:
            self.task.cancel()
        with contextlib.suppress(Exception):
            await self.poll()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.backend.shutdown(), 60)
        await asyncio.to_thread(local.disconnect, 20)
        await asyncio.to_thread(local.kill_local_ray, 5)


def _seq(obj: Any) -> int:
    try:
        return int(((obj or {}).get("data") or {}).get("seq", -1))
    except (TypeError, ValueError):
        return -1


class _Tracer:
    """Where one change's time goes inside the engine (``--breakdown``; benchmark process only).

    It wraps, in this process only, the shard's watch handler (when the source event
    arrived), ``Applier._main`` (when the reconciler handed the apply over) and
    ``Applier._take`` (when the write budget and the gate let it go); the answer is
    the end of ``_main``. The seq the body carries ties these to the harness's clock.
    """

    def __init__(self) -> None:
        import contextvars

        self.events: dict[int, float] = {}
        self.rows: list[tuple[float, ...]] = []
        self.sent: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
            "sent", default=None)

    @classmethod
    def install(cls) -> _Tracer:
        from ray_syncer.engine.applier import Applier

        tracer = cls()
        main, take = Applier._main, Applier._take

        async def traced_main(self: Any, body: dict[str, Any]) -> Any:
            dispatched, box = time.monotonic(), [0.0]
            token = tracer.sent.set(box)
            try:
                out = await main(self, body)
            finally:
                tracer.sent.reset(token)
            seq = _seq(body)
            tracer.rows.append((seq, tracer.events.pop(seq, dispatched), dispatched,
                                box[0] or dispatched, time.monotonic()))
            return out

        async def traced_take(self: Any) -> None:
            await take(self)
            box = tracer.sent.get()
            if box is not None:
                box[0] = time.monotonic()

        Applier._main = traced_main  # type: ignore[method-assign]
        Applier._take = traced_take  # type: ignore[method-assign]
        return tracer

    def watch(self, shard: Any) -> None:
        handler = shard.event

        async def event(type: str, obj: dict[str, Any]) -> None:
            self.events[_seq(obj)] = time.monotonic()
            await handler(type, obj)

        shard.event = event

    def take(self) -> list[tuple[float, ...]]:
        out, self.rows = self.rows, []
        if len(self.events) > 100_000:
            self.events.clear()
        return out


class Runner:
    """Handle on one syncer process."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_main, args=(child,), name="bench-syncer", daemon=True)
        self.process.start()
        self._lock = threading.Lock()  # one request on the pipe at a time

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def call(self, cmd: str, timeout: float = 600.0, **arg: Any) -> Any:
        with self._lock:
            self.conn.send((cmd, arg))
            if not self.conn.poll(timeout):
                raise RuntimeError(f"syncer process did not answer {cmd!r} within {timeout}s")
            status, value = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"syncer process: {cmd}: {value}")
        return value

    async def acall(self, cmd: str, timeout: float = 600.0, **arg: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.call(cmd, timeout, **arg)
        )

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(Exception):
                self.call("exit", timeout=60)
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
