"""Failover end to end: planned failover + failback under churn, emergency failover with fencing."""

from __future__ import annotations

import asyncio

from ray_syncer.dr.failover import Request, Transcript, run_failover
from ray_syncer.fencing import ANN_EPOCH, ANN_REVERSE_OF
from ray_syncer.kube.client import KubeClient
from ray_syncer.kube.config import load_kubeconfig_text
from ray_syncer.operator.reconciler import KRMSYNCER_RES
from ray_syncer.operator.status import condition
from tests.e2e.harness import (
    Clusters,
    cm_data,
    ensure_namespace,
    krmsyncer,
    put_cm,
    put_secret,
    put_syncer,
    syncer_status,
    unique,
    wait_condition,
    wait_for,
)

from .conftest import local_operator
from .helpers import Churn, cms, diff_of, live
from .partition import linked


def rule(ns: str) -> dict[str, object]:
    return {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [ns]}


def show(log: Transcript, title: str) -> None:
    print(f"\n--- {title} ---")
    for line in log.lines:
        print(line)


async def _some_synced(c: KubeClient, ns: str) -> bool:
    return len(await cms(c, ns)) >= 3


async def _writes_past(app: Churn, n: int) -> bool:
    return app.writes >= n


async def _logged(log: Transcript, text: str) -> bool:
    return any(text in line for line in log.lines)


def _index(log: Transcript, text: str) -> int:
    found = [i for i, line in enumerate(log.lines) if text in line]
    assert found, f"not in the transcript: {text!r}"
    return found[-1]


async def test_planned_failover_and_failback_under_churn(
    dr_clusters: Clusters, ca: KubeClient, cb: KubeClient
) -> None:
    alpha, beta = dr_clusters.source, dr_clusters.dest
    home = unique("planned")
    for c in (ca, cb):
        await ensure_namespace(c, home)
    # alpha's operator reaches beta through a link the test can cut: the gap is made, not hoped for.
    link, to_beta = await linked(beta.kubeconfig, beta.config.server)
    await put_secret(ca, home, "to-beta", to_beta)
    expected: dict[str, dict[str, str] | None] = {}
    async with local_operator(alpha, namespace=home), local_operator(beta, namespace=home):
        await put_syncer(ca, krmsyncer(home, "app", rules=[rule(home)], secret="to-beta"))
        app = Churn(ca, home, expected, tag="alpha", seed=1)
        writer = asyncio.create_task(app.run())
        await wait_for(lambda: _some_synced(cb, home), what="the first writes synced to beta")

        # Failover starts while beta lags behind (the link is down) and the application still
        # writes on alpha: the wait must see the gap, and must not go on until it is closed.
        await link.cut()
        unseen = app.writes + 5
        await wait_for(lambda: _writes_past(app, unseen), what="writes beta has not seen")
        log = Transcript()
        plan = Request(namespace=home, name="app", reverse_name="app",
                    reverse_kubeconfig=alpha.kubeconfig, timeout_s=60, poll_s=0.2,
                    confirm_timeout_s=10)
        failover = asyncio.create_task(
            run_failover(active=alpha.config, standby=beta.config, request=plan,
                         emergency_mode=False, log=log)
        )
        await wait_for(lambda: _logged(log, "not yet"), what="the failover waiting for beta")
        await wait_for(lambda: _writes_past(app, 25), what="churn during the failover")
        app.stop()
        await writer
        assert not failover.done(), "the failover went on while beta lagged behind"
        await link.heal()
        assert await failover == 0
        show(log, "planned failover alpha -> beta")
        # The standby's recovery point is in the transcript before it is promoted.
        measured = _index(log, "recovery point, measured now: the standby holds every source change")
        reported = _index(log, "recovery point, reported by the operator: ")
        assert measured < _index(log, "activate ") and reported < _index(log, "activate ")
        x = await ca.get(KRMSYNCER_RES, namespace=home, name="app")
        y = await cb.get(KRMSYNCER_RES, namespace=home, name="app")
        assert x["spec"]["suspend"] is True
        assert y["spec"]["suspend"] is False and y["spec"]["conflictPolicy"] == "Adopt"
        assert y["metadata"]["annotations"][ANN_REVERSE_OF] == f"{home}/app"
        assert await cms(cb, home) == live(expected)

        # The application now runs on beta; beta syncs back into alpha.
        app_b = Churn(cb, home, expected, tag="beta", seed=2)
        writer = asyncio.create_task(app_b.run())
        await asyncio.sleep(1.5)
        app_b.stop()
        await writer

        async def back_in_alpha() -> bool:
            return await cms(ca, home) == live(expected)

        await wait_for(back_in_alpha, timeout=20, what="beta's writes in alpha")
        await wait_condition(cb, home, "app", "Ready", "True", reason="Running")

        # Failback: the same command the other way round; alpha's syncer is resumed.
        log2 = Transcript()
        plan2 = Request(namespace=home, name="app", reverse_name="app", timeout_s=30, poll_s=0.2,
                     confirm_timeout_s=10)
        assert await run_failover(active=beta.config, standby=alpha.config, request=plan2,
                                  emergency_mode=False, log=log2) == 0
        show(log2, "failback beta -> alpha")
        x = await ca.get(KRMSYNCER_RES, namespace=home, name="app")
        y = await cb.get(KRMSYNCER_RES, namespace=home, name="app")
        assert x["spec"]["suspend"] is False and y["spec"]["suspend"] is True
        assert int(x["metadata"]["annotations"][ANN_EPOCH]) > int(y["metadata"]["annotations"][ANN_EPOCH])

        app_a = Churn(ca, home, expected, tag="alpha-again", seed=3)
        writer = asyncio.create_task(app_a.run())
        await asyncio.sleep(1.0)
        app_a.stop()
        await writer

        last: dict[str, object] = {}

        async def both_clean() -> bool:
            fwd = await diff_of(ca, home, "app", source=ca, dest=cb, fields=True)
            rev = await diff_of(cb, home, "app", source=cb, dest=ca, fields=True)
            last.update(fwd=fwd.to_json(), rev=rev.to_json())
            return fwd.in_sync and rev.in_sync

        try:
            await wait_for(both_clean, timeout=20, what="diff clean in both directions")
        except AssertionError:
            raise AssertionError(f"not clean: {last}") from None
        want = live(expected)
        assert await cms(ca, home) == want
        assert await cms(cb, home) == want
        assert any(v["by"] == "beta" for v in want.values()) or app_b.writes > 0
    await link.close()


async def test_emergency_failover_fences_the_returning_old_active(
    dr_clusters: Clusters, ca: KubeClient, cb: KubeClient
) -> None:
    alpha, beta = dr_clusters.source, dr_clusters.dest
    home = unique("emerg")
    for c in (ca, cb):
        await ensure_namespace(c, home)
    # Everything on beta's side (its operator, the person on call) reaches alpha through a link
    # that the test cuts: alpha "dies" for them while the test still sees alpha.
    link, alpha_via_link = await linked(alpha.kubeconfig, alpha.config.server)
    await put_secret(ca, home, "to-beta", beta.kubeconfig)
    await put_secret(cb, home, "to-alpha", alpha_via_link)
    # The standby's syncer sits suspended on beta, ready for failover.
    standby = krmsyncer(home, "app", rules=[rule(home)], secret="to-alpha", suspend=True)
    async with local_operator(beta, namespace=home):
        await put_syncer(cb, standby)
        async with local_operator(alpha, namespace=home):
            await put_syncer(ca, krmsyncer(home, "app", rules=[rule(home)], secret="to-beta"))
            await put_cm(ca, home, "orders", {"v": "1"})
            await wait_for(lambda: _eq(cb, home, "orders", {"v": "1"}), what="synced to beta")
        # alpha's operator is gone (the cluster died); its last change never left alpha.
        await put_cm(ca, home, "orders", {"v": "stale-alpha"})
        await link.cut()
        try:
            log = Transcript()
            plan = Request(namespace=home, name="app", reverse_name="app")
            assert await run_failover(active=load_kubeconfig_text(alpha_via_link, allow_files=True),
                                      standby=beta.config, request=plan, emergency_mode=True,
                                      log=log) == 0
            show(log, "emergency failover to beta")
            await put_cm(cb, home, "orders", {"v": "2-written-on-beta"})
            await put_cm(cb, home, "invoices", {"v": "new-on-beta"})
        finally:
            await link.heal()

        # alpha returns with its stale data and its syncer still active.
        async with local_operator(alpha, namespace=home):
            st = await wait_condition(ca, home, "app", "Ready", "False", reason="SplitBrain")
            ready = condition(st, "Ready")
            assert ready is not None and "ray-syncer failover" in ready["message"]
            # beta (the newer epoch) wins: alpha converges to beta's data, never the reverse.
            await wait_for(lambda: _eq(ca, home, "orders", {"v": "2-written-on-beta"}),
                           what="beta's data in alpha")
            await wait_for(lambda: _eq(ca, home, "invoices", {"v": "new-on-beta"}), what="new object")
            await asyncio.sleep(1.5)  # several fencing TTLs and operator ticks
            assert await cm_data(cb, home, "orders") == {"v": "2-written-on-beta"}
            st = await syncer_status(ca, home, "app")
            assert condition(st, "Ready")["reason"] == "SplitBrain"  # type: ignore[index]
            # Resolution: suspend the old active.
            old = await ca.get(KRMSYNCER_RES, namespace=home, name="app")
            await put_syncer(ca, {**krmsyncer(home, "app", rules=[rule(home)], secret="to-beta"),
                                  "spec": {**old["spec"], "suspend": True}})
            await wait_condition(ca, home, "app", "Suspended", "True", reason="Suspended")
            rev = await diff_of(cb, home, "app", source=cb, dest=ca)
            assert rev.in_sync, rev.to_json()
    await link.close()


async def test_split_brain_both_directions_refuse(
    dr_clusters: Clusters, ca: KubeClient, cb: KubeClient
) -> None:
    alpha, beta = dr_clusters.source, dr_clusters.dest
    home = unique("split")
    for c in (ca, cb):
        await ensure_namespace(c, home)
    await put_secret(ca, home, "to-beta", beta.kubeconfig)
    await put_secret(cb, home, "to-alpha", alpha.kubeconfig)
    # Someone activated both directions by hand: no failover markers, found by server URL.
    await put_syncer(ca, krmsyncer(home, "fwd", rules=[rule(home)], secret="to-beta"))
    await put_syncer(cb, krmsyncer(home, "back", rules=[rule(home)], secret="to-alpha"))
    await put_cm(ca, home, "from-alpha", {"v": "a"})
    await put_cm(cb, home, "from-beta", {"v": "b"})
    async with local_operator(alpha, namespace=home), local_operator(beta, namespace=home):
        for c, name in ((ca, "fwd"), (cb, "back")):
            st = await wait_condition(c, home, name, "Ready", "False", reason="SplitBrain")
            assert "suspend" in condition(st, "Ready")["message"]  # type: ignore[index]
        await asyncio.sleep(1.0)
        assert await cm_data(cb, home, "from-alpha") is None
        assert await cm_data(ca, home, "from-beta") is None
        # Resolving: suspend the reverse; the forward direction starts syncing.
        await put_syncer(cb, krmsyncer(home, "back", rules=[rule(home)], secret="to-alpha",
                                       suspend=True))
        await wait_for(lambda: _eq(cb, home, "from-alpha", {"v": "a"}), what="fwd resumes")
        await wait_condition(ca, home, "fwd", "Ready", "True", reason="Running")
        assert await cm_data(ca, home, "from-beta") is None


async def _eq(c: KubeClient, ns: str, name: str, want: dict[str, str]) -> bool:
    return await cm_data(c, ns, name) == want


async def test_opposite_directions_over_disjoint_namespaces_are_not_split_brain(
    dr_clusters: Clusters, ca: KubeClient, cb: KubeClient
) -> None:
    alpha, beta = dr_clusters.source, dr_clusters.dest
    home, n1, n2 = unique("bidi"), unique("n1"), unique("n2")
    for c in (ca, cb):
        for ns in (home, n1, n2):
            await ensure_namespace(c, ns)
    await put_secret(ca, home, "to-beta", beta.kubeconfig)
    await put_secret(cb, home, "to-alpha", alpha.kubeconfig)
    await put_syncer(ca, krmsyncer(home, "n1-out", rules=[rule(n1)], secret="to-beta"))
    await put_syncer(cb, krmsyncer(home, "n2-out", rules=[rule(n2)], secret="to-alpha"))
    await put_cm(ca, n1, "a", {"v": "a"})
    await put_cm(cb, n2, "b", {"v": "b"})
    async with local_operator(alpha, namespace=home), local_operator(beta, namespace=home):
        await wait_for(lambda: _eq(cb, n1, "a", {"v": "a"}), what="alpha's n1 in beta")
        await wait_for(lambda: _eq(ca, n2, "b", {"v": "b"}), what="beta's n2 in alpha")
        for c, name in ((ca, "n1-out"), (cb, "n2-out")):
            await wait_condition(c, home, name, "Ready", "True", reason="Running")
