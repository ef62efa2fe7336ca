"""How pending work of one key coalesces (merge_work) and the drift containment check."""

from __future__ import annotations

from ray_syncer.engine.reconciler import APPLY, DELETE, REFETCH, VERIFY, Work, contains, merge_work
from ray_syncer.engine.transform import Desired


def _apply(tag: str) -> Work:
    return Work(APPLY, desired=Desired(body={"metadata": {"name": tag}}, status=None, hash=1),
                seen=5.0)


def test_newer_source_state_wins() -> None:
    assert merge_work(_apply("a"), Work(DELETE, seen=9.0)).op == DELETE
    merged = merge_work(Work(DELETE, seen=1.0), _apply("b"))
    assert merged.op == APPLY and merged.seen == 1.0  # keeps the oldest sighting for lag


def test_drift_keeps_pending_source_state_and_forces_it() -> None:
    merged = merge_work(_apply("a"), Work(VERIFY, source_key="ns/a", seen=9.0))
    assert merged.op == APPLY and merged.force
    assert merge_work(Work(DELETE), Work(REFETCH, source_key="ns/a")).op == DELETE


def test_forced_refetch_supersedes_pending_apply() -> None:
    # A collision winner changed: the old winner's pending state must not be written.
    merged = merge_work(_apply("old-winner"), Work(REFETCH, source_key="b/x", force=True))
    assert merged.op == REFETCH and merged.source_key == "b/x"


def test_apply_after_verify_is_forced() -> None:
    assert merge_work(Work(VERIFY, source_key="ns/a"), _apply("a")).force


def test_contains() -> None:
    assert contains({"a": 1, "b": {"c": 2, "x": 0}}, {"b": {"c": 2}})
    assert not contains({"a": 1}, {"a": 2})
    assert not contains({"l": [1, 2]}, {"l": [1]})
    assert contains({"l": [{"p": 1, "extra": 2}]}, {"l": [{"p": 1}]})
    assert not contains(None, {"a": 1})
