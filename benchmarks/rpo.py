"""The recovery point under churn: what the syncer reports, next to what is observed.

Every ``interval_s`` while a scenario runs, two figures are sampled side by side:

* **reported**: now minus the shard's recovery point (``ShardHealth.recovery_point``,
  what ``krmsyncer_rpo_seconds`` exports);
* **observed**: how stale the destination is as the benchmark sees it, now minus the
  acknowledgement time of the oldest source write the destination does not show yet (0 when
  it shows every write).

The reported figure is meant to be an upper bound of the observed one. A sample where it is
lower by more than ``TOLERANCE_S`` (the observer's own watch delay) is counted as a bound
violation: a recovery point that claims more than is true.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.report import percentiles
from benchmarks.runner import Runner
from benchmarks.workload import Observer

TOLERANCE_S = 0.25


def observed_staleness(observer: Observer, now: float) -> float:
    """Now minus the acknowledgement time of the oldest write not yet in the destination."""
    oldest = min((t for waiting in observer.pending.values() for _, t in waiting), default=None)
    return 0.0 if oldest is None else max(0.0, now - oldest)


@dataclass
class RpoSampler:
    runner: Runner
    observer: Observer
    interval_s: float = 0.2
    reported: list[float] = field(default_factory=list)
    observed: list[float] = field(default_factory=list)
    violations: int = 0
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rpo-sampler")

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.summary()

    async def _run(self) -> None:
        while True:
            # Observed as the question is asked; reported as answered (the shard computes it in
            # between): a recovery point later than the truth still shows as a violation.
            observed = observed_staleness(self.observer, time.monotonic())
            health = await self.runner.acall("health", timeout=30)
            point = health.get("recovery_point")
            if point is not None:
                reported = max(0.0, time.time() - float(point))
                self.reported.append(reported)
                self.observed.append(observed)
                if reported + TOLERANCE_S < observed:
                    self.violations += 1
            await asyncio.sleep(self.interval_s)

    def summary(self) -> dict[str, Any]:
        """Percentiles in seconds (the report's are in milliseconds)."""
        def seconds(samples: list[float]) -> dict[str, float] | None:
            ms = percentiles(samples)
            return {k: round(v / 1000.0, 3) for k, v in ms.items()} if ms else None

        return {
            "reported_s": seconds(self.reported),
            "observed_s": seconds(self.observed),
            "samples": len(self.reported),
            "bound_violations": self.violations,
            "tolerance_s": TOLERANCE_S,
        }
