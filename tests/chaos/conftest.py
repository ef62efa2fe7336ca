"""Chaos suite fixtures: ``--chaos-long`` selects the long form; Ray comes from the e2e session.

``make test`` runs the short form (no ``slow`` marker, well under 90 s);
``make chaos`` runs ``pytest -q tests/chaos -m slow --chaos-long`` (a few
minutes). The seed comes from ``CHAOS_SEED`` (else random) and is printed with
a replay command when a run fails.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.e2e.conftest import ray_session  # noqa: F401  (the one session Ray, shared with e2e)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-long",
        action="store_true",
        default=False,
        help="run the long chaos form (30 s destination outage, minutes of churn)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    long = config.getoption("--chaos-long")
    keep, dropped = [], []
    for item in items:
        mine = str(item.fspath).startswith(here)
        if mine and "ray_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)
        # The long form is opt-in: without --chaos-long it is deselected, not skipped.
        if mine and not long and item.get_closest_marker("slow") is not None:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture
def chaos_long(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--chaos-long"))


@pytest.fixture
def chaos_seed() -> int:
    env = os.environ.get("CHAOS_SEED")
    return int(env) if env else random.SystemRandom().randrange(1, 1_000_000)
