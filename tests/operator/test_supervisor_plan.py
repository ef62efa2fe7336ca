"""The supervisor's decision logic: stop redundant first, start missing, restart, pack, never duplicate."""

from __future__ import annotations

from ray_syncer.engine.spec import ShardSpec
from ray_syncer.fleet.plan import (
    DesiredShard,
    HostView,
    RemoveHost,
    RunningShard,
    StartShard,
    StopShard,
    effective_pack_size,
    packed_host_name,
    plan,
)


def spec(namespace: str, *, syncer: str = "sync", kind: str = "ConfigMap") -> ShardSpec:
    return ShardSpec(
        syncer_namespace="team",
        syncer_name=syncer,
        group="",
        version="v1",
        kind=kind,
        source_namespace=namespace,
    )


def desired(*specs: ShardSpec, revision: str = "r1") -> dict[str, DesiredShard]:
    return {s.shard_id: DesiredShard(spec=s, revision=revision) for s in specs}


def running(s: ShardSpec, *, revision: str = "r1", failed: bool = False) -> RunningShard:
    return RunningShard(
        shard_id=s.shard_id, syncer_key=s.syncer_key, revision=revision, failed=failed
    )


def dedicated(*shards: RunningShard, reachable: bool = True) -> dict[str, HostView]:
    return {
        r.shard_id: HostView(
            name=r.shard_id, syncer_key=r.syncer_key, shards=(r,), reachable=reachable
        )
        for r in shards
    }


def test_nothing_running_starts_every_desired_shard_in_its_own_named_host() -> None:
    a, b = spec("a"), spec("b")
    actions = plan(desired(a, b), {})
    assert actions == [
        StartShard(a.shard_id, DesiredShard(a, "r1"), "Missing"),
        StartShard(b.shard_id, DesiredShard(b, "r1"), "Missing"),
    ]
    assert a.shard_id == "team/sync/core/ConfigMap/a"


def test_converged_state_plans_nothing() -> None:
    a, b = spec("a"), spec("b")
    assert plan(desired(a, b), dedicated(running(a), running(b))) == []


def test_unknown_desired_state_never_acts() -> None:
    # Right after a supervisor restart the reconciler has not spoken yet: stopping would be a guess.
    a = spec("a")
    assert plan(None, dedicated(running(a, failed=True))) == []


def test_redundant_shards_are_stopped_before_missing_ones_start() -> None:
    old, new = spec("old"), spec("new")
    actions = plan(desired(new), dedicated(running(old)))
    assert actions == [
        StopShard(old.shard_id, old.shard_id, "Redundant"),
        RemoveHost(old.shard_id),
        StartShard(new.shard_id, DesiredShard(new, "r1"), "Missing"),
    ]


def test_changed_revision_restarts_in_place() -> None:
    a = spec("a")
    actions = plan(desired(a, revision="r2"), dedicated(running(a, revision="r1")))
    assert actions == [
        StopShard(a.shard_id, a.shard_id, "Changed"),
        StartShard(a.shard_id, DesiredShard(a, "r2"), "Changed"),
    ]


def test_failed_shard_is_restarted() -> None:
    a = spec("a")
    actions = plan(desired(a), dedicated(running(a, failed=True)))
    assert [type(x).__name__ for x in actions] == ["StopShard", "StartShard"]
    assert {x.reason for x in actions if isinstance(x, StopShard | StartShard)} == {"Failed"}


def test_a_shard_found_in_two_hosts_keeps_one_copy() -> None:
    a = spec("a")
    r = running(a)
    hosts = {
        "host/team/sync/0": HostView("host/team/sync/0", a.syncer_key, (r,)),
        "host/team/sync/1": HostView("host/team/sync/1", a.syncer_key, (r,)),
    }
    actions = plan(desired(a), hosts, shards_per_host=10)
    assert actions == [
        StopShard("host/team/sync/1", a.shard_id, "Duplicate"),
        RemoveHost("host/team/sync/1"),
    ]


def test_unreachable_host_is_left_alone_and_its_shards_not_started_elsewhere() -> None:
    a, b = spec("a"), spec("b")
    hosts = dedicated(running(a), reachable=False)
    actions = plan(desired(b), hosts)
    # a is not desired, but its host did not answer: no stop, no removal; b starts.
    assert actions == [StartShard(b.shard_id, DesiredShard(b, "r1"), "Missing")]
    actions = plan(desired(a), hosts)
    assert actions == []


def test_packing_fills_hosts_up_to_the_limit_across_syncers() -> None:
    specs = [spec(f"ns{i}") for i in range(5)]
    other = spec("x", syncer="other")
    actions = plan(desired(*specs, other), {}, shards_per_host=2)
    starts = [a for a in actions if isinstance(a, StartShard)]
    by_host: dict[str, list[str]] = {}
    for s in starts:
        by_host.setdefault(s.host, []).append(s.shard.shard_id)
    assert set(by_host) == {packed_host_name(0), packed_host_name(1), packed_host_name(2)}
    assert all(len(v) == 2 for v in by_host.values())
    assert sorted(x for v in by_host.values() for x in v) == sorted(desired(*specs, other))


def test_packing_prefers_a_host_already_running_the_syncer() -> None:
    a, b = spec("a"), spec("b", syncer="other")
    h0, h1 = packed_host_name(0), packed_host_name(1)
    hosts = {
        h0: HostView(h0, "", (running(b),)),
        h1: HostView(h1, "", (running(spec("z")),)),
    }
    actions = plan(desired(a, b, spec("z")), hosts, shards_per_host=5)
    assert actions == [StartShard(h1, DesiredShard(a, "r1"), "Missing")]


def test_packing_reuses_room_in_existing_hosts_and_removes_emptied_ones() -> None:
    a, b, c = spec("a"), spec("b"), spec("c")
    h0, h1 = packed_host_name(0), packed_host_name(1)
    hosts = {
        h0: HostView(h0, "team/sync", (running(a), running(b))),
        h1: HostView(h1, "team/sync", (running(c),)),
    }
    # c goes away, d arrives: the emptied process is reused rather than killed and re-created.
    d = spec("d")
    actions = plan(desired(a, b, d), hosts, shards_per_host=3)
    assert actions == [
        StopShard(h1, c.shard_id, "Redundant"),
        StartShard(h1, DesiredShard(d, "r1"), "Missing"),
    ]
    # c goes away and nothing arrives: h1 is removed.
    actions = plan(desired(a, b), hosts, shards_per_host=3)
    assert actions == [StopShard(h1, c.shard_id, "Redundant"), RemoveHost(h1)]
    # Room left in h0 is used before a new host is made.
    e = spec("e")
    actions = plan(desired(a, b, c, e), hosts, shards_per_host=3)
    assert [
        (x.host, x.shard.spec.source_namespace) for x in actions if isinstance(x, StartShard)
    ] == [(h1, "e")]
    actions = plan(desired(a, b, c, d, e), hosts, shards_per_host=2)
    assert sorted(x.host for x in actions if isinstance(x, StartShard)) == [
        h1,
        packed_host_name(2),
    ]


def test_automatic_packing_past_the_threshold() -> None:
    assert effective_pack_size(0, 10) == 1
    assert effective_pack_size(0, 1000) > 1
    assert effective_pack_size(7, 3) == 7
    specs = [spec(f"ns{i}") for i in range(200)]
    actions = plan(desired(*specs), {}, shards_per_host=0)
    hosts = {a.host for a in actions if isinstance(a, StartShard)}
    assert 1 < len(hosts) < 200
    assert all(h.startswith("host/") for h in hosts)


def test_every_desired_shard_is_started_exactly_once_from_any_state() -> None:
    # Property-style: random-ish mixes of running states always converge to one copy per shard.
    import random

    rng = random.Random(7)
    for _ in range(200):
        pool = [spec(f"ns{i}") for i in range(8)]
        want = desired(*rng.sample(pool, rng.randint(0, 8)))
        hosts: dict[str, HostView] = {}
        for i in range(rng.randint(0, 4)):
            name = packed_host_name(i)
            shards = tuple(
                running(s, revision=rng.choice(["r1", "r0"]), failed=rng.random() < 0.2)
                for s in rng.sample(pool, rng.randint(0, 4))
            )
            hosts[name] = HostView(name, "team/sync", shards)
        actions = plan(want, hosts, shards_per_host=3)
        # Simulate execution.
        state = {name: {s.shard_id for s in v.shards} for name, v in hosts.items()}
        for act in actions:
            if isinstance(act, StopShard):
                state[act.host].discard(act.shard_id)
            elif isinstance(act, RemoveHost):
                assert not state[act.host]
                del state[act.host]
            else:
                state.setdefault(act.host, set()).add(act.shard.shard_id)
        # Stops and removals all come before the first start.
        kinds = [type(a).__name__ for a in actions]
        if "StartShard" in kinds:
            assert "StopShard" not in kinds[kinds.index("StartShard") :]
        everything = [s for shards in state.values() for s in shards]
        assert sorted(everything) == sorted(want)
        assert all(0 < len(v) <= 4 for v in state.values())
        # A second pass over the resulting state is a no-op.
        after = {
            name: HostView(name, "team/sync", tuple(running(want[s].spec) for s in shards))
            for name, shards in state.items()
        }
        assert plan(want, after, shards_per_host=3) == []


def test_a_restarted_packed_host_gets_back_the_shards_it_was_created_for() -> None:
    # host/1 was created for b and d; Ray restarted it empty (its node was lost). Sorted
    # order alone would give it b and c: the plan gives back exactly b and d, so the
    # host's repr (what it was created for) stays true.
    a, b, c, d = spec("a"), spec("b"), spec("c"), spec("d")
    hosts = {
        "host/0": HostView("host/0", "team/sync", (running(a), running(c)), planned=(a.shard_id, c.shard_id)),
        "host/1": HostView("host/1", "", (), planned=(b.shard_id, d.shard_id)),
        "host/2": HostView("host/2", "team/sync", (), planned=()),
    }
    actions = plan(desired(a, b, c, d), hosts, shards_per_host=3)
    starts = sorted((x.host, x.shard.shard_id) for x in actions if isinstance(x, StartShard))
    assert starts == [("host/1", b.shard_id), ("host/1", d.shard_id)]
    assert RemoveHost("host/2") in actions  # the empty one nobody needs


def test_shards_of_an_unreachable_host_are_not_started_elsewhere() -> None:
    # A host on a lost node answers nothing until Ray restarts it: its shards stay put.
    a, b = spec("a"), spec("b")
    hosts = {
        "host/0": HostView("host/0", "team/sync", (running(a),), reachable=False),
        "host/1": HostView("host/1", "team/sync", (running(b),)),
    }
    assert plan(desired(a, b), hosts, shards_per_host=3) == []
