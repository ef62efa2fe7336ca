"""Two bad-input cases on real Ray (shard hosts as actors), beside a valid KRMSyncer.

The rest of the package drives the same operator code with in-process hosts for speed; these
check that what a broken syncer reports travels through the Ray actors too: a refusal decided
by the operator (a non-YAML kubeconfig) and a problem only a shard actor can see (its kind is
missing on the destination), each with its condition and Warning Event, while the valid
syncer's shard actor keeps syncing.
"""

from __future__ import annotations

import uuid

import pytest
from ray_syncer_testkit import start_in_thread

from ray_syncer.kube.config import load_kubeconfig_text
from tests.e2e.conftest import _install_crd, ray_session  # noqa: F401
from tests.e2e.harness import Cluster, Clusters, operator, shard_actors

from .world import (
    CM,
    cm_rule,
    dest_ref,
    ensure_ns,
    get_or_none,
    install_crd,
    put_cm,
    put_secret,
    put_syncer,
    syncer_obj,
    wait_condition,
    wait_for,
    wait_warning,
    widget_crd,
)

pytestmark = pytest.mark.ray
HOME = "bi-ray"


@pytest.mark.timeout(120)
async def test_bad_syncers_on_ray_beside_a_good_one(ray_session: None) -> None:  # noqa: F811
    src, dst = start_in_thread(name="source"), start_in_thread(name="destination")
    clusters = Clusters(
        Cluster("source", src.kubeconfig(), load_kubeconfig_text(src.kubeconfig()), src),
        Cluster("destination", dst.kubeconfig(), load_kubeconfig_text(dst.kubeconfig()), dst),
    )
    try:
        await _install_crd(clusters.source)
        async with clusters.source.client() as sc, clusters.dest.client() as dc:
            for c in (sc, dc):
                await ensure_ns(c, HOME)
            group = f"r{uuid.uuid4().hex[:6]}.example.com"
            await install_crd(sc, widget_crd("widgets", "Widget", group))
            await put_secret(sc, HOME, "dest", {"kubeconfig": dst.kubeconfig()})
            await put_secret(sc, HOME, "broken", {"kubeconfig": "{{ not yaml"})
            async with operator(clusters, namespace=HOME):
                await put_syncer(sc, syncer_obj(HOME, "good", {
                    "rules": [cm_rule(HOME)], "destination": dest_ref()}))
                await put_syncer(sc, syncer_obj(HOME, "nokube", {
                    "rules": [cm_rule(HOME)], "destination": dest_ref("broken")}))
                rule = {"group": group, "version": "v1", "kind": "Widget", "namespaces": [HOME]}
                await put_syncer(sc, syncer_obj(HOME, "nokind", {
                    "rules": [rule], "destination": dest_ref()}))

                ready = await wait_condition(sc, HOME, "nokube", "Ready", "False",
                                             "KubeconfigInvalid", timeout=30)
                assert ready["message"].startswith(
                    f"Secret {HOME}/broken key 'kubeconfig': kubeconfig is not valid YAML"
                )
                await wait_warning(sc, HOME, "nokube", "KubeconfigInvalid")
                degraded = await wait_condition(sc, HOME, "nokind", "Degraded", "True",
                                                "KindMissing", timeout=30)
                assert (
                    f"the destination cluster does not serve {group}/v1/Widget "
                    "(is its CRD installed there?)" in degraded["message"]
                )
                await wait_warning(sc, HOME, "nokind", "KindMissing")
                # Only the good syncer's and the kind-missing syncer's shards run as actors.
                assert sorted(shard_actors(f"{HOME}/")) == [
                    f"{HOME}/good/core/ConfigMap/{HOME}",
                    f"{HOME}/nokind/{group}/Widget/{HOME}",
                ]
                await put_cm(sc, HOME, "beat", {"v": "1"})
                await wait_for(lambda: get_or_none(dc, CM, HOME, "beat"), what="good syncs")
    finally:
        src.stop()
        dst.stop()

