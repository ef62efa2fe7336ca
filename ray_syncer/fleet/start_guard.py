"""A guard beside a process while it starts its local Ray: a stop must stop it even then.

Why it exists: while ``ray.init`` starts a local Ray, some of its calls wait on
the processes it just started (the GCS's port file, the raylet's answer to the
driver's registration) while holding Python's GIL. A stop signal to the whole
process group kills those processes, and the waits then last until Ray's own
timeouts (10-30 s), with every thread of the starting process frozen: its
signal handling cannot run. The guard is a separate process in the same
process group, so it gets the same signal; if the process it guards has not
ended ``GRACE`` seconds later, it kills that process and everything under it
(SIGKILL). It exits as soon as the start is over (its stdin closes), so it
exists only for the seconds of a start.

Run as ``python -S -m ray_syncer.fleet.start_guard PID GRACE`` with pipes on stdin and
stdout (it writes one byte when it is on guard); ``fleet.local.connect`` does. It
imports nothing but the standard library and ``fleet.procs``, and starts in tens
of milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time

from ray_syncer.fleet import procs

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def guard(pid: int, grace_s: float) -> int:
    stopped_at: list[float] = []

    def on_stop(signum: int, frame: object) -> None:
        if not stopped_at:
            stopped_at.append(time.monotonic())

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_stop)
    os.write(sys.stdout.fileno(), b"1")  # on guard: the starting process may go on
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.1)
        if ready and not os.read(sys.stdin.fileno(), 64):
            return 0  # the start is over (or the guarded process is gone): nothing to guard
        if stopped_at and time.monotonic() - stopped_at[0] > grace_s:
            break
    # The guarded process did not end by itself after the stop: end it and its tree.
    for target in [*procs.live_descendants(pid), pid]:
        if target != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(target, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(guard(int(sys.argv[1]), float(sys.argv[2])))
