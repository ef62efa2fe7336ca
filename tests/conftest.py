"""Session-wide fixtures and the per-substrate report (see tests/substrate.py).

At the end of a run this prints the pass/fail/skip counts of each substrate.
With ``KRMSYNCER_REQUIRE_REAL=1`` (CI sets it when it has the control-plane
binaries) the run fails unless real-cluster tests were collected and passed:
a suite that silently skipped them all is not a green run. Likewise
``KRMSYNCER_REQUIRE_REHEARSAL=1`` (CI sets it where podman runs) fails a run in
which the deploy rehearsal (tests/rehearsal) skipped or never passed.

On real clusters nothing a test makes may stay (tests/cleanup.py): after every test its
KRMSyncers, then its namespaces, CRDs and identities are deleted on both clusters, and at the
end of the session a check lists whatever carries the run's label, removes it, and fails the
run naming it.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from . import cleanup
from .substrate import SUBSTRATES, RealClusters, real_clusters

REQUIRE_REAL_ENV = "KRMSYNCER_REQUIRE_REAL"
REQUIRE_REHEARSAL_ENV = "KRMSYNCER_REQUIRE_REHEARSAL"
_outcomes: dict[str, Counter[str]] = {s: Counter() for s in SUBSTRATES}
_rehearsal: Counter[str] = Counter()


@pytest.fixture(scope="session", params=SUBSTRATES)
def substrate(request: pytest.FixtureRequest) -> str:
    """``memory`` or ``real``; a suite's cluster fixture takes it to run every test on both."""
    return str(request.param)


@pytest.fixture(scope="session")
def real_pair() -> Iterator[RealClusters]:
    """Two real clusters for the whole session (started on first use), or a skip with the reason.

    Its teardown (the session's end, Ctrl-C included) is the leftover check: it fails the run
    naming anything of this run still on either cluster, after removing it."""
    pair_of = real_clusters()
    pair = next(pair_of)
    try:
        yield pair
    finally:
        try:
            cleanup.finish(
                _kubeconfigs(pair), cleanup.run_names(),
                deletes_complete={"source": pair.source.has_controller_manager,
                                  "destination": pair.dest.has_controller_manager},
            )
        finally:
            with contextlib.suppress(StopIteration):
                next(pair_of)  # stops envtest's control planes


def _kubeconfigs(pair: RealClusters) -> dict[str, str]:
    return {"source": pair.source.kubeconfig, "destination": pair.dest.kubeconfig}


@pytest.fixture(autouse=True)
def _leave_nothing_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test on real clusters, pass or fail, delete what it made on both (tests/cleanup.py)."""
    cleanup.begin_test()
    real = _substrate_of(request.node) == "real"
    pair = request.getfixturevalue("real_pair") if real else None
    yield
    names = cleanup.end_test(real=real)
    if pair is not None:
        cleanup.clean(_kubeconfigs(pair), names)


def _substrate_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    value = callspec.params.get("substrate")
    return value if value in SUBSTRATES else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if item.get_closest_marker("rehearsal") is not None and (
        report.when == "call" or report.outcome != "passed"
    ):
        _rehearsal[report.outcome] += 1
    sub = _substrate_of(item)
    if sub is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _outcomes[sub][report.outcome] += 1
    elif report.when == "teardown" and report.outcome == "failed":
        _outcomes[sub]["failed"] += 1


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not any(_outcomes.values()):
        return
    terminalreporter.section("substrates")
    for sub in SUBSTRATES:
        c = _outcomes[sub]
        terminalreporter.write_line(
            f"{sub:>6}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
        )
    if sum(_outcomes["real"].values()):
        terminalreporter.write_line(f"  real: {cleanup.describe()}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    real = _outcomes["real"]
    if os.environ.get(REQUIRE_REAL_ENV) == "1" and real["passed"] == 0:
        print(f"\n{REQUIRE_REAL_ENV}=1 but no real-cluster test passed "
              f"({real['skipped']} skipped, {real['failed']} failed): the real substrate did not run")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if os.environ.get(REQUIRE_REHEARSAL_ENV) == "1" and (
        _rehearsal["passed"] == 0 or _rehearsal["skipped"]
    ):
        print(f"\n{REQUIRE_REHEARSAL_ENV}=1 but the deploy rehearsal did not run whole "
              f"({_rehearsal['passed']} passed, {_rehearsal['skipped']} skipped)")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
