"""KRMSyncer status: conditions a person can act on, and a write policy that never hot-loops."""

from __future__ import annotations

from ray_syncer.engine.spec import ShardHealth, ShardState
from ray_syncer.operator.status import (
    MIN_WRITE_INTERVAL_S,
    VOLATILE_WRITE_INTERVAL_S,
    Problem,
    SyncerFacts,
    compute_status,
    condition,
    should_write,
)

A, B = "team/s/core/ConfigMap/a", "team/s/core/ConfigMap/b"


def healthy(shard_id: str, *, objects: int = 3, lag: float = 0.0) -> ShardHealth:
    return ShardHealth(
        shard_id=shard_id,
        state=ShardState.SYNCING,
        objects=objects,
        synced=True,
        lag_seconds=lag,
        last_sync_time=1000.0,
    )


def conds(status: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_all_shards_synced_is_ready_synced_not_degraded() -> None:
    facts = SyncerFacts(generation=4, expected_shards=[A, B])
    status = compute_status(facts, [healthy(A), healthy(B, objects=2)], now=2000.0)
    assert conds(status) == {
        "Ready": ("True", "Running"),
        "Suspended": ("False", "Active"),
        "DestinationReachable": ("True", "Reachable"),
        "Synced": ("True", "Synced"),
        "Degraded": ("False", "Healthy"),
        "RecoveryPointObjective": ("Unknown", "NotMeasured"),
    }
    assert status["observedGeneration"] == 4
    assert status["objects"] == 5
    assert [s["name"] for s in status["shards"]] == [A, B]
    assert status["shards"][0]["lastSyncTime"] == "1970-01-01T00:16:40Z"
    assert all(c["observedGeneration"] == 4 for c in status["conditions"])


def test_invalid_spec_carries_the_precise_message() -> None:
    msg = "spec.rules[0].version: field required"
    status = compute_status(SyncerFacts(generation=1, invalid=Problem("InvalidSpec", msg)), [])
    assert conds(status)["Ready"] == ("False", "InvalidSpec")
    assert condition(status, "Ready")["message"] == msg  # type: ignore[index]


def test_suspended_is_silent_and_says_so() -> None:
    status = compute_status(SyncerFacts(generation=2, suspended=True), [])
    assert conds(status)["Suspended"] == ("True", "Suspended")
    assert conds(status)["Ready"] == ("True", "Suspended")
    assert status["shards"] == []


def test_destination_problem_names_the_reason() -> None:
    facts = SyncerFacts(
        generation=1,
        destination=Problem("SecretNotFound", 'Secret "team/dest" not found'),
        expected_shards=[A],
    )
    status = compute_status(facts, [])
    assert conds(status)["DestinationReachable"] == ("False", "SecretNotFound")
    assert conds(status)["Ready"] == ("False", "SecretNotFound")
    assert 'Secret "team/dest"' in condition(status, "Ready")["message"]  # type: ignore[index]


def test_refusal_explains_itself() -> None:
    p = Problem("NamespaceNotAllowed", "may only sync namespace team; rule 0 names prod")
    status = compute_status(SyncerFacts(generation=1, refused=p), [])
    assert conds(status)["Ready"] == ("False", "NamespaceNotAllowed")
    assert conds(status)["Degraded"] == ("True", "NamespaceNotAllowed")


def test_missing_and_unsynced_shards() -> None:
    facts = SyncerFacts(generation=1, expected_shards=[A, B])
    lagging = ShardHealth(shard_id=B, state=ShardState.LISTING, pending=7)
    status = compute_status(facts, [healthy(A), lagging])
    assert conds(status)["Ready"] == ("True", "Running")
    assert conds(status)["Synced"] == ("False", "Syncing")
    assert "1 of 2" in condition(status, "Synced")["message"]  # type: ignore[index]
    status = compute_status(facts, [healthy(A)])
    assert conds(status)["Ready"] == ("False", "ShardsStarting")
    assert B in condition(status, "Ready")["message"]  # type: ignore[index]
    failed = SyncerFacts(generation=1, expected_shards=[A, B], failed_shards=[B])
    status = compute_status(failed, [healthy(A), healthy(B)])
    assert conds(status)["Ready"] == ("False", "ShardsRestarting")


def test_degraded_picks_the_worst_problem() -> None:
    facts = SyncerFacts(generation=1, expected_shards=[A, B])
    conflicted = healthy(A)
    conflicted.conflicts = 2
    guard = healthy(B)
    guard.delete_guard_tripped = True
    guard.last_error = "relist would delete 80% of objects; deletes paused"
    status = compute_status(facts, [conflicted, guard])
    assert conds(status)["Degraded"] == ("True", "DeleteGuardTripped")
    assert "deletes paused" in condition(status, "Degraded")["message"]  # type: ignore[index]
    # Worst shards are listed first in the summary.
    assert status["shards"][0]["name"] == B


def test_no_shards_is_not_an_error() -> None:
    status = compute_status(SyncerFacts(generation=1, expansions=["*/*/Nothing -> (none)"]), [])
    assert conds(status)["Ready"] == ("True", "NoShards")
    assert status["expandedRules"] == ["*/*/Nothing -> (none)"]


def test_transition_time_is_kept_while_a_condition_holds() -> None:
    facts = SyncerFacts(generation=1, expected_shards=[A])
    first = compute_status(facts, [healthy(A)], now=1000.0)
    second = compute_status(facts, [healthy(A)], previous=first, now=5000.0)
    assert condition(second, "Ready")["lastTransitionTime"] == "1970-01-01T00:16:40Z"  # type: ignore[index]
    broken = compute_status(
        SyncerFacts(generation=1, destination=Problem("Unreachable", "x")),
        [],
        previous=second,
        now=9000.0,
    )
    assert condition(broken, "Ready")["lastTransitionTime"] == "1970-01-01T02:30:00Z"  # type: ignore[index]


def test_write_policy_changes_now_volatile_rarely_never_hot() -> None:
    facts = SyncerFacts(generation=1, expected_shards=[A])
    s1 = compute_status(facts, [healthy(A)], now=1000.0)
    assert should_write(None, s1, last_write=None, now=1000.0)
    assert not should_write(s1, s1, last_write=None, now=1000.0)
    # Only lag changed: written at most every VOLATILE_WRITE_INTERVAL_S.
    s2 = compute_status(facts, [healthy(A, lag=3.0)], previous=s1, now=1001.0)
    assert not should_write(s1, s2, last_write=1000.0, now=1005.0)
    assert should_write(s1, s2, last_write=1000.0, now=1000.0 + VOLATILE_WRITE_INTERVAL_S)
    # A condition change is written at once, but never twice within MIN_WRITE_INTERVAL_S.
    s3 = compute_status(SyncerFacts(generation=2, suspended=True), [], previous=s1, now=1002.0)
    assert should_write(s1, s3, last_write=1000.0, now=1000.0 + MIN_WRITE_INTERVAL_S)
    assert not should_write(s1, s3, last_write=1000.0, now=1000.0 + MIN_WRITE_INTERVAL_S / 2)


def test_recovery_point_is_judged_against_the_target() -> None:
    def judged(target: float | None, **recovery: float) -> tuple[dict, dict]:
        facts = SyncerFacts(generation=1, expected_shards=[A, B], recovery=recovery,
                            rpo_target_s=target)
        status = compute_status(facts, [healthy(A), healthy(B)], now=2000.0)
        return status, condition(status, "RecoveryPointObjective") or {}

    status, cond = judged(30.0, **{A: 2.0, B: 12.5})
    assert (cond["status"], cond["reason"]) == ("True", "WithinTarget")
    assert status["recoveryPointSeconds"] == 12.5 and status["rpoTargetSeconds"] == 30.0
    assert [s["recoveryPointSeconds"] for s in status["shards"]] == [2.0, 12.5]
    status, cond = judged(30.0, **{A: 2.0, B: 31.0})
    assert (cond["status"], cond["reason"]) == ("False", "TargetMissed")
    assert B in cond["message"] and "30s" in cond["message"]
    status, cond = judged(None, **{A: 2.0, B: 31.0})
    assert (cond["status"], cond["reason"]) == ("True", "NoTarget")
    assert status["recoveryPointSeconds"] == 31.0 and "rpoTargetSeconds" not in status
    status, cond = judged(30.0)
    assert (cond["status"], cond["reason"]) == ("Unknown", "NotMeasured")
    assert "recoveryPointSeconds" not in status


def test_recovery_point_is_not_judged_while_suspended() -> None:
    facts = SyncerFacts(generation=1, suspended=True, recovery={A: 500.0}, rpo_target_s=30.0)
    status = compute_status(facts, [])
    assert conds(status)["RecoveryPointObjective"] == ("Unknown", "Suspended")
    assert "recoveryPointSeconds" not in status
