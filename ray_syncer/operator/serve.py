"""The operator, served: the reconciler, the HTTP endpoints and a bounded stop.

Why it exists: :func:`serve` is the controller's whole life for any fleet
(``fleet.supervisor.Fleet``): the Ray one of ``ray-syncer run``, or an
in-process one in the demo and the end-to-end tests. It runs the
``Reconciler`` and the ``/metrics`` ``/healthz`` ``/readyz`` server until told
to stop, then stops within a bound: the reconciler gets a moment to finish its
pass, the metrics port is released first, the fleet's shards get what is left
(destination data stays). What failed or ran out of time is recorded in a
:class:`StopOutcome`, which ``ray-syncer run`` turns into its exit code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ray_syncer.fleet.supervisor import Fleet, SupervisorReport
from ray_syncer.operator.options import OperatorOptions
from ray_syncer.operator.reconciler import Reconciler

log = logging.getLogger("ray_syncer.operator")


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
    backend: Fleet,
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
    from ray_syncer.kube.client import KubeClient
    from ray_syncer.operator.crd_order import CrdOrderingBackend
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
