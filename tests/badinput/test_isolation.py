"""One KRMSyncer whose processing fails unexpectedly must not stall the others.

Two hostile kubeconfigs once did this (a server URL with user:password@, a port out of range:
both raised ValueError deep in the pass and no syncer was reconciled any more). Those inputs are
now refused at load time; this test guards the mechanism itself with a remote client that
raises something no one planned for.
"""

from __future__ import annotations

from typing import Any

from ray_syncer_testkit import start_in_thread

from ray_syncer.engine.options import EngineOptions
from ray_syncer.fleet.supervisor import LocalDriver, SupervisorCore
from ray_syncer.kube.client import KubeClient
from ray_syncer.kube.config import ClusterConfig, load_kubeconfig_text
from ray_syncer.operator.reconciler import KRMSYNCER_RES, Reconciler, Settings
from ray_syncer.operator.status import condition

from .world import cm_rule, dest_ref, ensure_ns, install_crd, permissive_crd, put_secret, syncer_obj


class Exploding:
    """A remote client that fails in a way no handler expects."""

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("unexpected")

    def invalidate_discovery(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_one_syncer_failing_does_not_stall_the_others() -> None:
    src, dst = start_in_thread(name="source"), start_in_thread(name="destination")
    own = load_kubeconfig_text(src.kubeconfig())
    client = KubeClient(own)
    backend = SupervisorCore(LocalDriver())

    def factory(cfg: ClusterConfig) -> Any:
        return Exploding() if cfg.name == "boom" else KubeClient(cfg)

    try:
        await install_crd(client, permissive_crd())
        for ns, context in (("bad", "boom"), ("good", None)):
            await ensure_ns(client, ns)
            await put_secret(client, ns, "dest", {"kubeconfig": dst.kubeconfig(context=context)})
            obj = syncer_obj(ns, "s", {"rules": [cm_rule(ns)], "destination": dest_ref()})
            await client.request("POST", KRMSYNCER_RES.path(namespace=ns), body=obj)
        r = Reconciler(client, own, backend, Settings(engine_options=EngineOptions()),
                       client_factory=factory)
        items, _ = await client.list_all(KRMSYNCER_RES)
        r.syncers = {f"{o['metadata']['namespace']}/s": o for o in items}
        report = await r.reconcile_all()
        assert report is not None
        assert "good/s/core/ConfigMap/good" in report.health or any(
            "good/s/" in a for a in report.actions
        )
        bad = (await client.get(KRMSYNCER_RES, namespace="bad", name="s")).get("status")
        ready = condition(bad, "Ready")
        assert ready is not None and (ready["status"], ready["reason"]) == ("False", "InternalError")
        assert ready["message"] == (
            "the operator failed on this KRMSyncer (RuntimeError); what it already ran keeps "
            "running, and other KRMSyncers are unaffected"
        )
        good = (await client.get(KRMSYNCER_RES, namespace="good", name="s")).get("status")
        assert condition(good, "DestinationReachable")["reason"] == "Reachable"  # type: ignore[index]
    finally:
        await backend.shutdown()
        await client.close()
        src.stop()
        dst.stop()
