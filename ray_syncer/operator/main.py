"""``ray-syncer run``: the operator process.

Why it exists: it wires the pieces together and owns the process lifecycle.
It loads the operator's own cluster config (in-cluster, ``KUBECONFIG`` or
``--kubeconfig``/``--context``), connects to Ray (``--ray-address``,
``RAY_ADDRESS``, or an embedded local Ray), gets-or-creates the supervisor
actor (``ray_syncer.actors.RayBackend``), runs the ``Reconciler`` and the
``/metrics`` ``/healthz`` ``/readyz`` server, and on SIGTERM/SIGINT/SIGHUP stops
all shards (destination data stays) before exiting.

A stop always stops (``Stopper``): signals are read by a thread, so they are
seen even while the main thread is stuck in a Ray call; the first one starts
the stop and arms a watchdog that ends the process at ``--stop-timeout``
whatever it is blocked on; a second one exits at once. Every step is bounded:
the metrics port is released first, Ray is probed before the shards are
stopped (a dead or unreachable Ray is skipped, not waited on), ``ray.shutdown``
runs in a daemon thread, and a local Ray this process started is killed to the
last process. Exit codes: 0 clean stop, 1 a step failed or ran out of time,
128+N a second signal N, 2 bad configuration.

``serve()`` is the same code path without Ray setup or signals, used by the
demo and the end-to-end tests to run the operator in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ray_syncer.engine.options import EngineOptions
from ray_syncer.operator.executor import SupervisorReport
from ray_syncer.operator.planner import Tenancy
from ray_syncer.operator.reconciler import Backend, Reconciler, Settings

log = logging.getLogger("ray_syncer.operator")

STOP_TIMEOUT_S = 8.0  # default --stop-timeout: first signal to exit
RAY_STOP_RESERVE_S = 3.0  # of it, kept for ray.shutdown and ending the local Ray
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster address (else RAY_ADDRESS, else start a local Ray)",
    )
    parser.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig of the operator's own cluster (else in-cluster or KUBECONFIG)",
    )
    parser.add_argument("--context", default=None, help="context in --kubeconfig")
    parser.add_argument(
        "--namespace", default=None, help="watch KRMSyncers only in this namespace (default: all)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=9090,
        help="port of /metrics /healthz /readyz (default 9090)",
    )
    parser.add_argument(
        "--allow-kubeconfig-exec",
        action="store_true",
        help="let kubeconfigs from Secrets run exec/auth-provider plugins and read local files",
    )
    parser.add_argument(
        "--restrict-to-own-namespace",
        action="store_true",
        help="a KRMSyncer may only sync its own namespace (unless in --tenant-namespaces)",
    )
    parser.add_argument(
        "--tenant-namespaces",
        default="",
        help="comma-separated namespaces whose KRMSyncers may sync anywhere when restricted",
    )
    parser.add_argument(
        "--max-shards-per-actor",
        type=int,
        default=0,
        help="shards per Ray actor process: 0 = automatic (default: one actor per shard up to "
        "50 shards, then 50 per actor), 1 = always one actor per shard, N = up to N per actor",
    )
    parser.add_argument(
        "--supervisor-resource",
        default=None,
        metavar="NAME",
        help="run the supervisor actor on a Ray node with this custom resource (default: the "
        "head node, beside the operator)",
    )
    parser.add_argument(
        "--cluster-name", default=None, help="this cluster's identity in ownership annotations"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=STOP_TIMEOUT_S,
        help="seconds from SIGTERM/SIGINT to exit, whatever is stuck; shards get what Ray's "
        f"shutdown does not need (default {STOP_TIMEOUT_S:g}, at least 4)",
    )
    # Engine tuning: how hard shards may write. Defaults suit a production API server.
    engine = EngineOptions()
    tuning = parser.add_argument_group("engine tuning (per destination, per shard process)")
    tuning.add_argument(
        "--dest-qps",
        type=float,
        default=engine.dest_qps,
        help="hard cap on writes/s per destination (default: none; the write budget adapts "
        "to the destination's 429s, errors and latency)",
    )
    tuning.add_argument(
        "--dest-burst",
        type=int,
        default=engine.dest_burst,
        help="burst allowed at the --dest-qps cap (default: one second's worth)",
    )
    tuning.add_argument(
        "--max-in-flight",
        type=int,
        default=engine.max_in_flight,
        help=f"concurrent writes per shard (default {engine.max_in_flight})",
    )
    tuning.add_argument(
        "--batch-size",
        type=int,
        default=engine.batch_size,
        help=f"ready keys drained per batch (default {engine.batch_size})",
    )
    tuning.add_argument(
        "--delete-guard-fraction",
        type=float,
        default=engine.delete_guard_fraction,
        help="delete-storm guard: pause deletes when a relist would remove more than this "
        f"fraction (default {engine.delete_guard_fraction:g}) ...",
    )
    tuning.add_argument(
        "--delete-guard-min",
        type=int,
        default=engine.delete_guard_min,
        help=f"... and more than this many owned objects (default {engine.delete_guard_min})",
    )


@dataclass
class OperatorOptions:
    namespace: str | None = None
    metrics_port: int = 9090
    metrics_host: str = "0.0.0.0"
    allow_kubeconfig_exec: bool = False
    restrict_to_own_namespace: bool = False
    tenant_namespaces: frozenset[str] = frozenset()
    max_shards_per_actor: int = 0  # automatic packing
    supervisor_resource: str | None = None  # None: the head node
    cluster_name: str | None = None
    tick_s: float = 5.0
    discovery_ttl_s: float = 30.0
    probe_ttl_s: float = 15.0
    status_min_interval_s: float = 2.0
    engine_options: Any = None
    # Stop all shards when the operator exits (SIGTERM). False leaves them to a successor.
    stop_shards_on_exit: bool = True
    # Bound on the whole stop in serve(): reconciler, metrics server, shards, client.
    stop_timeout_s: float = 60.0
    extra: dict[str, Any] = field(default_factory=dict)

    def settings(self, own_cluster_name: str) -> Settings:
        return Settings(
            namespace=self.namespace,
            allow_kubeconfig_exec=self.allow_kubeconfig_exec,
            tenancy=Tenancy(
                restrict_to_own_namespace=self.restrict_to_own_namespace,
                tenant_namespaces=self.tenant_namespaces,
            ),
            cluster_name=self.cluster_name or own_cluster_name or "in-cluster",
            tick_s=self.tick_s,
            discovery_ttl_s=self.discovery_ttl_s,
            probe_ttl_s=self.probe_ttl_s,
            status_min_interval_s=self.status_min_interval_s,
            engine_options=self.engine_options,
        )


def options_from_args(args: argparse.Namespace) -> OperatorOptions:
    tenants = frozenset(t.strip() for t in (args.tenant_namespaces or "").split(",") if t.strip())
    if args.max_shards_per_actor < 0:
        raise SystemExit("--max-shards-per-actor must be >= 0")
    if not args.stop_timeout >= 4:
        raise SystemExit("--stop-timeout must be >= 4 (seconds)")
    try:
        engine = EngineOptions(
            dest_qps=args.dest_qps,
            dest_burst=args.dest_burst,
            max_in_flight=args.max_in_flight,
            batch_size=args.batch_size,
            delete_guard_fraction=args.delete_guard_fraction,
            delete_guard_min=args.delete_guard_min,
        )
    except ValueError as exc:
        raise SystemExit(f"ray-syncer run: {exc}") from None
    return OperatorOptions(
        namespace=args.namespace,
        metrics_port=args.metrics_port,
        allow_kubeconfig_exec=args.allow_kubeconfig_exec,
        restrict_to_own_namespace=args.restrict_to_own_namespace,
        tenant_namespaces=tenants,
        max_shards_per_actor=args.max_shards_per_actor,
        supervisor_resource=args.supervisor_resource or None,
        cluster_name=args.cluster_name,
        engine_options=engine,
        stop_timeout_s=args.stop_timeout - RAY_STOP_RESERVE_S,
    )


class MetricsFeed:
    """Feeds host snapshots into the merged collector and sets ``krmsyncer_shards{state}``."""

    def __init__(self) -> None:
        from ray_syncer.metrics import MergedCollector

        self.collector = MergedCollector(include_local=True)

    def __call__(self, report: SupervisorReport) -> None:
        from ray_syncer.metrics import set_shards_by_state

        for host, snap in report.metrics.items():
            self.collector.update(host, snap)
        for gone in set(self.collector.sources()) - set(report.metrics) - set(report.unreachable):
            self.collector.drop(gone)
        counts: dict[str, int] = {}
        for h in report.health.values():
            state = h.state.value if hasattr(h.state, "value") else str(h.state)
            counts[state] = counts.get(state, 0) + 1
        set_shards_by_state(counts)


@dataclass
class StopOutcome:
    """What went wrong while stopping; empty is a clean stop (``run`` turns it into the exit code)."""

    problems: list[str] = field(default_factory=list)

    def fail(self, step: str, what: str) -> None:
        log.warning("stop: %s %s", step, what)
        self.problems.append(f"{step} {what}")


async def _bounded(step: str, work: Awaitable[Any], timeout: float, outcome: StopOutcome) -> Any:
    try:
        return await asyncio.wait_for(work, timeout=max(0.01, timeout))
    except asyncio.TimeoutError:
        outcome.fail(step, f"did not finish within {timeout:.1f}s; abandoned")
    except Exception as exc:  # the type only, unless ours: messages can carry cluster details
        detail = f": {exc}" if getattr(exc, "safe_to_log", False) else ""
        outcome.fail(step, f"failed: {type(exc).__name__}{detail}")
    return None


async def serve(
    options: OperatorOptions,
    *,
    backend: Backend,
    own_config: Any,
    stop: asyncio.Event,
    on_started: Callable[[Reconciler, Any], None] | None = None,
    outcome: StopOutcome | None = None,
) -> Reconciler:
    """Run the operator until ``stop`` is set; then stop shards (if configured) and return.

    The stop takes at most about ``options.stop_timeout_s``: the reconciler gets
    a moment to finish its pass (then it is cancelled), the metrics server is
    closed first (its port is free at once), and shards get what is left. What
    failed or ran out of time is logged and added to ``outcome``.
    """
    from ray_syncer.crd_order import CrdOrderingBackend
    from ray_syncer.kube.client import KubeClient
    from ray_syncer.operator.httpserver import HttpServer

    outcome = outcome if outcome is not None else StopOutcome()
    # CRDs before their objects: custom-resource shards wait for their CRD to be Established.
    backend = CrdOrderingBackend(backend)
    feed = MetricsFeed()
    client = KubeClient(own_config)
    reconciler = Reconciler(
        client, own_config, backend, options.settings(own_config.name), on_report=feed
    )
    started = time.monotonic()

    def healthy() -> bool:
        # Alive if a pass completed recently, or we are still starting up.
        recent = reconciler.last_pass or started
        return time.monotonic() - recent < max(60.0, 6 * options.tick_s)

    http = HttpServer(
        port=options.metrics_port,
        host=options.metrics_host,
        collector=feed.collector,
        healthy=healthy,
        ready=lambda: reconciler.ready,
    )
    await http.start()
    log.info("serving /metrics /healthz /readyz on port %d", http.port)
    if on_started is not None:
        on_started(reconciler, http)
    runner = asyncio.create_task(reconciler.run(stop), name="reconciler")
    try:
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({runner, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if runner.done():
            runner.result()  # the reconciler failed: raise it (after the stop below)
    finally:
        deadline = time.monotonic() + options.stop_timeout_s

        def left(cap: float) -> float:
            return max(0.0, min(cap, deadline - time.monotonic()))

        if not runner.done():
            if not stop.is_set():
                runner.cancel()  # serve() itself was cancelled
            done, _ = await asyncio.wait({runner}, timeout=left(1.0))
            if not done:
                log.info("stop: cancelling the reconciler's pass")
                runner.cancel()
                done, _ = await asyncio.wait({runner}, timeout=left(1.0))
                if not done:
                    outcome.fail("reconciler", "did not stop")
        await _bounded("metrics server", http.stop(), left(1.0), outcome)
        if options.stop_shards_on_exit:
            n = await _bounded("shard shutdown", backend.shutdown(), left(1e9) - 0.5, outcome)
            if n is not None:
                log.info("stopped %d shard host(s); destination data is kept", n)
        await _bounded("client", client.close(), max(left(0.5), 0.1), outcome)
    return reconciler


class Stopper:
    """How ``ray-syncer run`` stops; one mechanism for every signal and every stuck step.

    * Signals are caught by a no-op handler and read from a wakeup fd by a
      thread, so they are acted on even while the main thread is stuck in a
      Ray call.
    * The first SIGTERM/SIGINT/SIGHUP sets the stop event and arms a watchdog:
      at the deadline the local Ray is killed and the process exits (code 1),
      whatever the stop is blocked on.
    * A second signal kills the local Ray and exits at once (128 + signal).
    * ``exit()`` ends the process with ``os._exit`` after flushing logs: the
      interpreter's own exit would run Ray's atexit shutdown, which can block.
    """

    def __init__(self, timeout_s: float, on_abandon: Callable[[], object]) -> None:
        self.timeout_s = timeout_s
        self._on_abandon = on_abandon
        self._lock = threading.Lock()
        self._exiting = threading.Lock()
        self._signals = 0
        self._begun: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        threading.Thread(target=self._reader, name="stop-signals", daemon=True).start()

    def install(self) -> None:
        """(Re)install the handlers (main thread): ray.init sets its own SIGTERM handler."""
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                continue  # started under nohup: keep ignoring hangups
            signal.signal(sig, _caught)

    @property
    def signalled(self) -> bool:
        return self._signals > 0

    def attach(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        """The event loop and the event to set on the first signal (now, if one came already)."""
        self._loop, self._stop = loop, stop
        if self.signalled:
            stop.set()

    def left(self, reserve: float = 0.0) -> float:
        """Seconds until the deadline, minus ``reserve`` (the full timeout before the stop begins)."""
        begun = self._begun if self._begun is not None else time.monotonic()
        return max(0.0, begun + self.timeout_s - time.monotonic() - reserve)

    def begin(self) -> None:
        """Start the clock (first signal, or the operator ended by itself) and arm the watchdog."""
        with self._lock:
            if self._begun is not None:
                return
            self._begun = time.monotonic()
        threading.Thread(target=self._watchdog, name="stop-watchdog", daemon=True).start()

    def exit(self, code: int) -> NoReturn:
        with self._exiting:  # one exit; a concurrent one waits here until the process is gone
            _flush(0.5)
            os._exit(code)

    def _reader(self) -> None:
        while True:
            for signum in os.read(self._read, 64):
                self._on_signal(signum)

    def _on_signal(self, signum: int) -> None:
        with self._lock:
            self._signals += 1
            first = self._signals == 1
        name = signal.Signals(signum).name
        if first:
            _log_briefly(
                logging.INFO,
                f"received {name}: stopping within {self.timeout_s:g}s "
                "(a second signal exits at once)",
            )
            self.begin()
            loop, stop = self._loop, self._stop
            if loop is not None and stop is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: the stop is past it
                    loop.call_soon_threadsafe(stop.set)
        else:
            _log_briefly(logging.WARNING, f"received {name} again: exiting now")
            self._abandon(128 + signum)

    def _watchdog(self) -> None:
        time.sleep(self.left())
        _log_briefly(
            logging.WARNING, f"stop did not finish within {self.timeout_s:g}s: exiting now"
        )
        self._abandon(1)

    def _abandon(self, code: int) -> NoReturn:
        try:
            self._on_abandon()
        except Exception as exc:
            _log_briefly(
                logging.WARNING, f"stop: ending the local Ray failed: {type(exc).__name__}"
            )
        self.exit(code)


def _caught(signum: int, frame: Any) -> None:
    """The Python-level handler: nothing; the Stopper's thread reads the signal from the wakeup fd."""


def _in_thread(fn: Callable[[], object], timeout: float) -> None:
    # Logging can block (a full pipe); an exit must not wait on it for long.
    thread = threading.Thread(target=fn, name="stop-log", daemon=True)
    thread.start()
    thread.join(timeout)


def _log_briefly(level: int, message: str) -> None:
    _in_thread(lambda: log.log(level, message), 0.3)


def _flush(timeout: float) -> None:
    def flush() -> None:
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()

    _in_thread(flush, timeout)


def _stop_ray(actors: Any, backend: Any, stopper: Stopper, outcome: StopOutcome) -> None:
    """Disconnect from Ray, bounded; end the local Ray this process started (never a joined one)."""
    problem = (
        backend.ray_problem if backend.probed else actors.unavailable(min(1.0, stopper.left()))
    )
    grace = 2.0  # ray.shutdown asked them to exit: the dashboard's helpers take a moment
    if problem is None:
        if not actors.disconnect(timeout=stopper.left(reserve=1.2)):
            outcome.fail("ray.shutdown", "did not finish in time; abandoned")
            grace = 0.0
    elif actors.local_ray_down():
        log.info("stop: %s; nothing to shut down", problem)
        grace = 0.5  # its GCS and raylet can hang in their own shutdown
    else:
        outcome.fail("ray.shutdown", f"skipped: {problem}")
        grace = 0.0
    killed = actors.kill_local_ray(grace=min(grace, stopper.left(reserve=0.3)))
    if killed:
        log.info("stop: killed what was left of the local Ray: %s", ", ".join(killed))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from ray_syncer import actors
    from ray_syncer.kube.config import KubeconfigError, load_default

    options = options_from_args(args)
    try:
        own_config = load_default(kubeconfig=args.kubeconfig, context=args.context)
    except KubeconfigError as exc:
        log.error("cannot load the operator's own cluster config: %s", exc.message)
        return 2
    stopper = Stopper(args.stop_timeout, on_abandon=actors.kill_local_ray)
    stopper.install()
    outcome = StopOutcome()
    interrupted = False
    try:
        actors.connect(args.ray_address, adopt_orphans=True)
        stopper.install()  # ray.init set its own SIGTERM handler
    except (SystemExit, KeyboardInterrupt):
        # A signal during ray.init: Ray's SIGTERM handler raised SystemExit. Stop as for any signal.
        stopper.install()
        stopper.begin()
        interrupted = True
    backend = actors.RayBackend(
        actors.ActorSettings(
            shards_per_host=options.max_shards_per_actor,
            supervisor_resource=options.supervisor_resource or actors.HEAD_RESOURCE,
        )
    )

    async def main() -> None:
        stop = asyncio.Event()
        stopper.attach(asyncio.get_running_loop(), stop)
        await serve(options, backend=backend, own_config=own_config, stop=stop, outcome=outcome)

    try:
        if not interrupted and not stopper.signalled:
            asyncio.run(main())
    except Exception:
        log.exception("operator failed")
        outcome.problems.append("operator failed")
    stopper.begin()  # no-op after a signal; bounds the stop when the operator ended by itself
    _stop_ray(actors, backend, stopper, outcome)
    code = 1 if outcome.problems else 0
    log.info("stopped (exit code %d)", code)
    stopper.exit(code)
