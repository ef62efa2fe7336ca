"""Starting, probing and stopping the Ray this process uses: a joined cluster or a local one.

Why it exists: ``ray-syncer run`` (and the demo and tests) either joins a Ray
cluster (``--ray-address``, ``RAY_ADDRESS``) or starts a local Ray of its own,
and a stop must never hang on Ray. So:

* :func:`connect` joins or starts Ray in the ``krmsyncer`` namespace; a local
  Ray's own processes (those ``ray.init`` starts as our children: GCS, raylet,
  dashboard, log monitor) are remembered by pid;
* :func:`unavailable` says, within a bounded time, whether Ray is down (a local
  Ray one of whose own processes exited) or does not answer (its GCS is silent);
* :func:`disconnect` runs ``ray.shutdown()`` in a daemon thread, bounded;
* :func:`kill_local_ray` ends whatever is left of a local Ray this process
  started, to the last process (never a cluster it only joined).

Ray's private API, used here only: the GCS ping in :func:`unavailable` calls
the connected worker's GCS client (``ray._private.worker.global_worker``)
because no public call takes a timeout and returns; everything else is public
Ray API or this process's own view of its children (``/proc``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ray

from ray_syncer.fleet import procs

log = logging.getLogger(__name__)

RAY_NAMESPACE = "krmsyncer"
PROBE_TIMEOUT_S = 1.5  # how long a stop waits for Ray's GCS to answer before skipping Ray calls
# After a stop signal during a local Ray's start, how long this process may take to end by
# itself before the start guard ends it (it ends at once, unless Ray holds the GIL).
START_GUARD_GRACE_S = 1.0
# Set by connect(): True when this process started the local Ray (so it may end it), and the
# pids of that Ray's own processes (pid -> name).
_started_local = False
_own: dict[int, str] = {}


# A local Ray for one syncer (``connect`` without an address): Ray's own processes poll less
# and no idle workers are started ahead of need, so on a small node they leave the cores to the
# shards and the API servers (issue 21; benchmarks/footprint.py measures it: about -0.01 cores
# idle and up to -30 MB PSS for one shard). Each is a Ray system-config entry (RAY_<name>) or a
# constant Ray's Python processes read from their environment, plus one glibc setting; the
# dashboard (its Actors view) and the metrics export stay as they are. A set variable wins.
LEAN_RAY_ENV: dict[str, str] = {
    # No idle Python workers started ahead of need (~70 MB each, doing nothing): the
    # supervisor and the hosts get theirs when they are created.
    "RAY_prestart_worker_first_driver": "0",
    "RAY_enable_worker_prestart": "0",
    # The raylet's periodic chores, less often (defaults 100-250 ms): resource reports, the
    # memory monitor, idle-worker reaping, the GC check, the debug-state dump.
    "RAY_raylet_report_resources_period_milliseconds": "500",
    "RAY_memory_monitor_refresh_ms": "1000",
    "RAY_kill_idle_workers_interval_ms": "1000",
    "RAY_raylet_check_gc_period_milliseconds": "1000",
    "RAY_debug_dump_period_milliseconds": "60000",
    # Task events for the dashboard's task views, batched every 5 s instead of every second.
    "RAY_task_events_report_interval_ms": "5000",
    # The dashboard agent's node stats (psutil over every worker): every 10 s, not 5 s; the
    # dashboard's own metrics every 15 s, not 5 s.
    "REPORTER_UPDATE_INTERVAL_MS": "10000",
    "METRICS_RECORD_INTERVAL_S": "15",
    # The log monitor looks for new log files every 5 s instead of every 0.1 s (it still
    # tails the files it knows every 0.1 s; logs are files in the session dir either way).
    "RAY_LOG_MONITOR_MANY_FILES_THRESHOLD": "1",
    "LOG_NAME_UPDATE_INTERVAL_S": "5",
    "RAY_USAGE_STATS_ENABLED": "0",
    # glibc: two malloc arenas per process instead of eight per core; Ray's many-threaded
    # processes otherwise spread small allocations over many half-empty arenas.
    "MALLOC_ARENA_MAX": "2",
}


class RayUnavailable(RuntimeError):
    """Ray is down or does not answer: a call that needs it would hang."""

    safe_to_log = True  # the message is ours (no cluster data): the operator logs it


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    include_dashboard: bool | None = None,
    log_to_driver: bool = True,
    object_store_memory: int | None = None,
    adopt_orphans: bool = False,
    lean: bool = True,
) -> bool:
    """Connect to Ray (``address``, else RAY_ADDRESS, else start a local Ray). True if started locally.

    ``lean``: a local Ray started here gets ``LEAN_RAY_ENV`` (unless already set).

    ``adopt_orphans`` (``ray-syncer run``): before starting a local Ray, become a
    child subreaper (Linux), so that processes of that Ray whose parent died
    (workers and agents of a dead raylet) stay our descendants and
    ``kill_local_ray()`` finds them.

    Starting a local Ray runs beside a start guard (``fleet.start_guard``): some of
    ``ray.init``'s waits hold the GIL, and a stop signal that also stopped the
    processes they wait on would otherwise freeze this process for Ray's own
    timeouts. ``ray.init`` stays on the calling thread: Ray's processes are
    started with a parent-death signal, which the kernel sends when the *thread*
    that started them ends.
    """
    global _started_local
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _started_local = False
        ray.init(address=address, namespace=RAY_NAMESPACE, log_to_driver=log_to_driver)
        return False
    # Ray 2.60 enables token auth by default; the embedded local Ray runs without it.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if lean:
        for key, value in LEAN_RAY_ENV.items():
            os.environ.setdefault(key, value)
    kwargs: dict[str, Any] = {
        "namespace": RAY_NAMESPACE,
        "log_to_driver": log_to_driver,
    }
    if num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    if include_dashboard is not None:
        kwargs["include_dashboard"] = include_dashboard
    if object_store_memory is not None:
        kwargs["object_store_memory"] = object_store_memory
    if adopt_orphans:
        _become_subreaper()
    _started_local = True  # set first: a signal during ray.init must still clean up
    before = set(procs.children(os.getpid()))
    _own.clear()
    with _start_guard():
        ray.init(**kwargs)
    _track_own(before)
    return True


@contextlib.contextmanager
def _start_guard(grace_s: float = START_GUARD_GRACE_S) -> Iterator[None]:
    """``fleet.start_guard`` beside this process while its local Ray starts (on guard first)."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)}
    guard = subprocess.Popen(
        [sys.executable, "-S", "-m", "ray_syncer.fleet.start_guard", str(os.getpid()),
         str(grace_s)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
    )
    assert guard.stdout is not None and guard.stdin is not None
    ready, _, _ = select.select([guard.stdout], [], [], 5.0)
    if not ready or not guard.stdout.read(1):
        log.warning("the start guard did not come up; starting Ray without it")
    try:
        yield
    finally:
        guard.stdin.close()  # the start is over: the guard exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            guard.wait(timeout=2)
        guard.stdout.close()


def _track_own(before: set[int]) -> None:
    for pid in procs.children(os.getpid()):
        if pid not in before and pid not in _own:
            _own[pid] = procs.comm(pid)


def disconnect(timeout: float | None = None) -> bool:
    """``ray.shutdown()``; with ``timeout``, in a daemon thread: False if it did not finish in time.

    A shutdown that did not finish is abandoned (its thread may stay blocked:
    the caller must then end the process with ``os._exit``; interpreter exit
    would run Ray's atexit shutdown and block on the same lock).
    """
    if not ray.is_initialized():
        return True
    if timeout is None:
        ray.shutdown()
        return True
    finished = threading.Event()

    def shutdown() -> None:
        try:
            ray.shutdown()
        except Exception as exc:
            log.warning("ray.shutdown failed: %s", type(exc).__name__)
        finally:
            finished.set()

    threading.Thread(target=shutdown, name="ray-shutdown", daemon=True).start()
    return finished.wait(max(0.0, timeout))


def unavailable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why Ray cannot be used now, or None when its GCS answers; blocks at most about ``timeout``.

    A local Ray (started by this process) is down when any of its processes
    (GCS, raylet, dashboard, log monitor...) has exited.
    """
    if not ray.is_initialized():
        return "not connected to Ray"
    reason = _local_down()
    if reason is None:
        deadline = time.monotonic() + timeout
        error = _bounded(_ping_gcs, timeout)
        if error is not None:
            # A local Ray that is going down (a signal to the whole process group) shows it
            # within the probe's time, even when the ping failed at once (its GCS went first).
            reason = _local_down()
            while reason is None and _started_local and time.monotonic() < deadline:
                time.sleep(0.05)
                reason = _local_down()
            reason = reason or f"Ray's GCS did not answer within {timeout:g}s ({error})"
    return reason


def local_ray_down() -> bool:
    """True when this process started the local Ray and one of its own processes has exited."""
    return _local_down() is not None


def _local_down() -> str | None:
    if not _started_local:
        return None
    if not ray.is_initialized() or not _own:
        return "the local Ray is not running"  # or half started: what is left of it gets killed
    alive = set(procs.children(os.getpid()))
    dead = sorted({name or str(pid) for pid, name in _own.items() if pid not in alive})
    return f"the local Ray is down ({', '.join(dead)} exited)" if dead else None


def _ping_gcs(timeout: float) -> None:
    from ray._private.worker import global_worker

    gcs = getattr(global_worker, "gcs_client", None)
    if gcs is None:
        raise RayUnavailable("no GCS client")
    gcs.internal_kv_exists(b"ping", b"ray_syncer", timeout=timeout)


def _bounded(fn: Callable[[float], object], timeout: float) -> str | None:
    """Run ``fn(timeout)`` in a daemon thread: None if it returned in time, else what went wrong."""
    outcome: list[str | None] = []

    def call() -> None:
        try:
            fn(timeout)
            outcome.append(None)
        except Exception as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=call, name="ray-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else "no answer"


async def off_loop(fn: Callable[[], Any]) -> Any:
    """``fn()`` in a daemon thread (not the default executor, whose threads exit waits for)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def call() -> None:
        try:
            result, error = fn(), None
        except Exception as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=call, name="ray-call", daemon=True).start()
    return await future


async def probe(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """:func:`unavailable`, awaited without blocking the event loop."""
    problem: str | None = await off_loop(lambda: unavailable(timeout))
    return problem


# -- the processes of a local Ray this process started --


def _become_subreaper() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        PR_SET_CHILD_SUBREAPER = 36
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except Exception as exc:  # not fatal: only orphans of a dead raylet would be missed
        log.debug("cannot become a child subreaper: %s", exc)


def _reap() -> None:
    # Zombie children (ours, or orphans we adopted as subreaper): collect them.
    with contextlib.suppress(ChildProcessError, OSError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def kill_local_ray(grace: float = 0.0) -> list[str]:
    """End every process of the local Ray this process started; return those it had to SIGKILL.

    Waits up to ``grace`` seconds for them to exit on their own (``ray.shutdown``
    asks them to), then SIGKILLs what is left: GCS, raylet, dashboard, agents,
    workers (a stopped process too). Does nothing when this process only joined
    a Ray cluster (``--ray-address``): that cluster is not ours to end.
    """
    if not _started_local:
        return []
    me = os.getpid()
    deadline = time.monotonic() + grace
    left = procs.live_descendants(me)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        _reap()
        left = procs.live_descendants(me)
    if not left:
        return []
    # No logging here: a stop that abandons may run while another thread holds logging's lock.
    killed = [procs.describe(pid) for pid in left]
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 1.0
    while procs.live_descendants(me) and time.monotonic() < deadline:
        time.sleep(0.02)
        _reap()
    return killed


def is_connected() -> bool:
    return bool(ray.is_initialized())
