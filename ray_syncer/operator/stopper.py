"""How ``ray-syncer run`` stops: one mechanism for every signal and every stuck step.

Why it exists: a stop must always stop, even while the main thread is stuck in
a call that does not return (a Ray call to a GCS that went away). Signals are
read by a thread from a wakeup fd; the first sets the stop and arms a watchdog
that ends the process at ``--stop-timeout`` whatever it is blocked on; a second
one exits at once. While the process is still starting (connecting to Ray,
which can block for many seconds on a Ray that is going down with us), nothing
runs that a stop would drain, so the first signal ends the start at once. What
"abandon" means (ending a local Ray) is given by the caller, so this module
knows nothing of Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

log = logging.getLogger("ray_syncer.operator")

STOP_TIMEOUT_S = 8.0  # default --stop-timeout: first signal to exit
RAY_STOP_RESERVE_S = 3.0  # of it, kept for ray.shutdown and ending the local Ray
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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
        self._starting = False
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

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        """While inside, a first signal abandons the start at once (exit 0: nothing ran yet)."""
        with self._lock:
            self._starting = not self.signalled
        try:
            yield
        finally:
            with self._lock:
                self._starting = False

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
            starting = self._starting
        name = signal.Signals(signum).name
        if first and starting:
            _log_briefly(logging.INFO, f"received {name} while starting: nothing runs yet; "
                         "ending the start now")
            self._abandon(0)
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
