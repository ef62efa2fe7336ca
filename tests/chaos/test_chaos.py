"""The chaos run (run.py), short form in ``make test``, long form in ``make chaos``.

Checks after faults stop (docs/design.md §4):
* destination owned objects == source within 10 s (no lost updates: content compared);
* 0 unowned objects modified or deleted (end state *and* request log);
* 0 deletes of objects that exist in the source, from the destination's request log: every
  DELETE the destination executed must follow a source delete of that object (a delete
  followed by a re-create still counts as wrong);
* the KRMSyncer status names the conflicts, and its Synced condition turns True;
* once converged, 3 quiet seconds cost zero destination writes (no-op is free);
* no token in the operator's logs or the Ray worker logs.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from ray_syncer_testkit import start_in_thread

from ray_syncer.fleet import testing as fleet_testing

from .run import ChaosRun, Profile, run_chaos


def _replay(seed: int, long: bool) -> str:
    target = "make chaos" if long else "make test PYTEST_ARGS='tests/chaos'"
    return f"seed {seed}; replay with: CHAOS_SEED={seed} {target}"


async def _check(run: ChaosRun, caplog: pytest.LogCaptureFixture, started: float) -> None:
    assert await run.unowned_touched() == []
    assert run.wrong_deletes() == []
    assert run.conflicts_missing == []
    assert run.quiet_writes == []
    assert run.synced_condition.startswith("True Synced"), run.synced_condition
    assert run.figures.updates > 0 and run.figures.deletes > 0
    # Status is written on change, at most every 2 s (operator/status.py), never hot-looping.
    assert 0 < run.figures.status_writes <= run.figures.elapsed_s / 2 + 3, run.figures.render()
    for token in run.tokens:
        assert token not in caplog.text
    logs = Path(fleet_testing.session_log_dir())
    for path in logs.glob("*"):
        if path.is_file() and path.stat().st_mtime >= started - 5:
            data = path.read_bytes()
            for token in run.tokens:
                assert token.encode() not in data, f"token found in Ray log {path.name}"


async def _chaos(seed: int, profile: Profile, long: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    started = time.time()
    src = start_in_thread(name="chaos-source", seed=seed)
    dst = start_in_thread(name="chaos-destination", seed=seed)
    run: ChaosRun | None = None
    try:
        run = await run_chaos(seed=seed, profile=profile, src=src, dst=dst)
        await _check(run, caplog, started)
        print(f"\nCHAOS {'long' if long else 'short'}: {run.figures.render()}")
    except BaseException as exc:
        figures = run.figures.render() if run is not None else f"seed={seed}"
        raise AssertionError(f"{exc}\n{figures}\n{_replay(seed, long)}") from exc
    finally:
        if run is not None:
            await run.close()
        src.stop()
        dst.stop()


@pytest.mark.timeout(150)
async def test_chaos_short(ray_session: None, chaos_seed: int, caplog: pytest.LogCaptureFixture) -> None:
    """24 s of churn and every fault at once; the outage is 5 s here (30 s in the long form)."""
    await _chaos(chaos_seed, Profile.short(), False, caplog)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_chaos_long(
    ray_session: None, chaos_seed: int, chaos_long: bool, caplog: pytest.LogCaptureFixture
) -> None:
    assert chaos_long  # deselected without --chaos-long (conftest)
    await _chaos(chaos_seed, Profile.long(), True, caplog)
