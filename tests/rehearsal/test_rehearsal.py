"""The production path, run: deploy/ on two real control planes, the image's containers syncing.

One deployment (conftest.py) serves these tests in file order; each asserts one thing a user
relies on after `kubectl apply -k deploy`, on the destination cluster and on Ray's own view:

1. the README's walkthrough ConfigMap arrives, and its KRMSyncer is Ready and Synced;
2. ConfigMaps and Secrets are created, updated and deleted on the standby;
3. the shard hosts run in the worker containers, the supervisor on the head, and every container
   runs as the manifest's securityContext says (uid 1000, read-only root, no capabilities);
4. the operator's /metrics and the Ray dashboard answer (the dashboard only with the Ray token);
5. SIGKILL of a worker container moves its shards to the other worker, 0 updates lost;
6. ``podman stop --time <terminationGracePeriodSeconds>`` on the head (SIGTERM to PID 1, as the
   kubelet sends) ends the container cleanly within the grace period, the operator's stop logged;
7. the real RBAC authorizer denied nothing, on either cluster, the whole time.

Objects are read and written here with the official kubernetes client, not the product's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config  # type: ignore[import-untyped]
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]
from ray_syncer_testkit.envtest import ControlPlane

from tests.rehearsal.conftest import figures
from tests.rehearsal.deployment import (
    Deployment,
    audit_403s,
    condition,
    http_get,
    wait_for,
)

pytestmark = [pytest.mark.rehearsal, pytest.mark.timeout(900)]

APP_NS = "shop"
APP_SYNCER = "shop-sync"
# Every shard host must run again on the surviving worker, with every change written, within
# this long of the SIGKILL (docs/design.md: a lost node's shards are back within 30 s).
RECOVERY_BOUND_S = 30.0


def core(plane: ControlPlane) -> Any:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(plane.kubeconfig_path)))


def dest_cm(d: Deployment, ns: str, name: str) -> dict[str, str] | None:
    try:
        return core(d.dest).read_namespaced_config_map(name, ns).data or {}
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def dest_secret(d: Deployment, ns: str, name: str) -> dict[str, str] | None:
    try:
        return core(d.dest).read_namespaced_secret(name, ns).data or {}
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def synced(d: Deployment, ns: str, name: str) -> dict[str, Any] | None:
    syncer = d.syncer(ns, name)
    ok = all(condition(syncer, t).get("status") == "True" for t in ("Ready", "Synced"))
    return syncer if ok else None


def hosts_by_pod(d: Deployment) -> dict[str, list[str]]:
    """Pod name -> names of the ALIVE shard host actors on its Ray node (the dashboard's view)."""
    nodes = {n["raylet"]["nodeId"]: n["raylet"]["instanceId"]
             for n in d.dashboard("/nodes?view=summary")["data"]["summary"]}
    out: dict[str, list[str]] = {}
    for a in d.dashboard("/logical/actors")["data"]["actors"].values():
        if a["state"] == "ALIVE" and a["className"] == "ShardHostActor":
            out.setdefault(nodes.get(a["address"]["nodeId"], "?"), []).append(a["name"])
    return out


@pytest.fixture(scope="module")
def app(deployment: Deployment) -> Iterator[Deployment]:
    """A second KRMSyncer, for ConfigMaps and Secrets of the namespace ``shop``."""
    d = deployment
    d.kubectl(d.source, "create", "namespace", APP_NS)
    d.kubectl(d.source, "apply", "-f", "-", input=f"""
apiVersion: syncer.gkelabs.io/v1alpha1
kind: KRMSyncer
metadata: {{name: {APP_SYNCER}, namespace: default}}
spec:
  rules:
    - {{group: "", version: v1, kind: ConfigMap, namespaces: [{APP_NS}]}}
    - {{group: "", version: v1, kind: Secret, namespaces: [{APP_NS}]}}
  destination:
    clusterConfig:
      kubeConfigSecretRef: {{name: remote-kubeconfig}}
""")
    wait_for(lambda: synced(d, "default", APP_SYNCER), f"{APP_SYNCER} Ready and Synced",
             timeout=120)
    yield d


def test_walkthrough_configmap_arrives_and_its_syncer_is_ready_and_synced(
    deployment: Deployment,
) -> None:
    d = deployment
    t0 = time.monotonic()
    data = wait_for(lambda: dest_cm(d, "default", "test-sync-data"),
                    "test-sync-data on the standby", timeout=120)
    figures["first_copy_after_pods_s"] = round(time.monotonic() - t0 + d.timings["pods_started_s"]
                                               - d.timings["head_ready_s"], 1)
    assert data == {"key": "value1"}
    copy = core(d.dest).read_namespaced_config_map("test-sync-data", "default")
    assert copy.metadata.labels["syncer.gkelabs.io/managed-by"] == "default.configmap-sync"
    assert copy.metadata.annotations["syncer.gkelabs.io/source-cluster"] == "primary"
    syncer = wait_for(lambda: synced(d, "default", "configmap-sync"),
                      "configmap-sync Ready and Synced", timeout=60)
    assert syncer["status"]["objects"] == 1
    assert condition(syncer, "Degraded").get("status") == "False"


def test_configmaps_and_secrets_are_created_updated_and_deleted_on_the_standby(
    app: Deployment,
) -> None:
    d, src = app, core(app.source)
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"mode": "a"})
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="db"),
                             string_data={"password": "one"})
    src.create_namespaced_config_map(APP_NS, cm)
    src.create_namespaced_secret(APP_NS, secret)
    wait_for(lambda: dest_cm(d, APP_NS, "settings") == {"mode": "a"}, "the ConfigMap created",
             timeout=60)
    wait_for(lambda: dest_secret(d, APP_NS, "db") == {"password": "b25l"}, "the Secret created",
             timeout=60)

    src.patch_namespaced_config_map("settings", APP_NS, {"data": {"mode": "b"}})
    src.patch_namespaced_secret("db", APP_NS, {"stringData": {"password": "two"}})
    wait_for(lambda: dest_cm(d, APP_NS, "settings") == {"mode": "b"}, "the ConfigMap updated",
             timeout=60)
    wait_for(lambda: dest_secret(d, APP_NS, "db") == {"password": "dHdv"}, "the Secret updated",
             timeout=60)

    src.delete_namespaced_config_map("settings", APP_NS)
    src.delete_namespaced_secret("db", APP_NS)
    wait_for(lambda: dest_cm(d, APP_NS, "settings") is None, "the ConfigMap deleted", timeout=60)
    wait_for(lambda: dest_secret(d, APP_NS, "db") is None, "the Secret deleted", timeout=60)
    syncer = wait_for(lambda: synced(d, "default", APP_SYNCER), "shop-sync Synced", timeout=60)
    assert {s["kind"] for s in syncer["status"]["shards"]} == {"ConfigMap", "Secret"}


def test_shard_hosts_run_in_the_worker_containers_and_the_supervisor_on_the_head(
    app: Deployment,
) -> None:
    d = app
    assert d.head is not None
    hosts = wait_for(lambda: (h := hosts_by_pod(d)) and sum(map(len, h.values())) == 3 and h,
                     "three shard hosts ALIVE", timeout=60)
    workers = {w.name for w in d.workers}
    assert set(hosts) <= workers, f"shard hosts outside the worker pods: {hosts}"
    nodes = {n["raylet"]["nodeId"]: n["raylet"]["instanceId"]
             for n in d.dashboard("/nodes?view=summary")["data"]["summary"]}
    (supervisor,) = [a for a in d.dashboard("/logical/actors")["data"]["actors"].values()
                     if a["className"] == "SupervisorActor" and a["state"] == "ALIVE"]
    assert nodes[supervisor["address"]["nodeId"]] == d.head.name
    figures["hosts_per_worker"] = {k: len(v) for k, v in sorted(hosts.items())}


def test_containers_run_with_the_manifests_security_context(deployment: Deployment) -> None:
    d = deployment
    for pod in [d.head, *d.workers]:
        assert pod is not None
        name = d.container(pod)
        info = d.podman.inspect(name)
        assert info["Config"]["User"] == f"{pod.run_as_user}:{pod.run_as_group}" == "1000:100"
        assert info["HostConfig"]["ReadonlyRootfs"] is pod.read_only_root is True
        assert "no-new-privileges" in " ".join(info["HostConfig"]["SecurityOpt"])
        # What the processes inside see: a non-root user without capabilities (drop: ALL), and
        # a root they cannot write.
        assert d.podman("exec", name, "id", "-u").strip() == "1000"
        caps = dict(line.split(":\t") for line in d.podman(
            "exec", name, "grep", "^Cap", "/proc/self/status").splitlines())
        assert int(caps["CapEff"], 16) == int(caps["CapBnd"], 16) == 0, caps
        proc = d.podman("exec", name, "sh", "-c", "touch /home/ray/x 2>&1 || echo refused",
                        check=False)
        assert "Read-only file system" in proc and "refused" in proc


def test_operator_metrics_and_the_ray_dashboard_answer(app: Deployment) -> None:
    d = app
    status, text = http_get(d.operator_url("/metrics"))
    assert status == 200
    # The shard actors' own series reach the operator's endpoint, per shard.
    objects = [line for line in text.splitlines() if line.startswith("krmsyncer_objects{")]
    assert any(f'syncer="default/{APP_SYNCER}"' in line for line in objects), objects
    assert http_get(d.operator_url("/readyz"))[0] == 200
    # The dashboard is up, and Ray's token auth is on: no token, no answer.
    assert http_get(d.dashboard_url("/api/version"), token=d.ray_token)[0] == 200
    assert http_get(d.dashboard_url("/api/version"))[0] in (401, 403)


class Churn:
    """Updates ConfigMaps and Secrets of ``shop`` round-robin; remembers the last value of each."""

    def __init__(self, d: Deployment, *, configmaps: int = 6, secrets: int = 4) -> None:
        self.src = core(d.source)
        self.names = [("cm", f"churn-{i}") for i in range(configmaps)] + \
                     [("secret", f"churn-{i}") for i in range(secrets)]
        self.last: dict[tuple[str, str], int] = {}
        self.counter = 0
        self.stop = threading.Event()
        for kind, name in self.names:
            self._write(kind, name, create=True)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _write(self, kind: str, name: str, *, create: bool = False) -> None:
        self.counter += 1
        data = {"n": str(self.counter)}
        if kind == "cm":
            if create:
                self.src.create_namespaced_config_map(
                    APP_NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data))
            else:
                self.src.patch_namespaced_config_map(name, APP_NS, {"data": data})
        elif create:
            self.src.create_namespaced_secret(
                APP_NS, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data))
        else:
            self.src.patch_namespaced_secret(name, APP_NS, {"stringData": data})
        self.last[(kind, name)] = self.counter

    def _run(self) -> None:
        while not self.stop.is_set():
            for kind, name in self.names:
                if self.stop.is_set():
                    return
                self._write(kind, name)
                time.sleep(0.05)

    def at_least(self, d: Deployment, floor: dict[tuple[str, str], int]) -> bool:
        """Whether every object's standby copy carries a value at least its ``floor``."""
        import base64

        for (kind, name), value in floor.items():
            data = dest_cm(d, APP_NS, name) if kind == "cm" else dest_secret(d, APP_NS, name)
            if data is None:
                return False
            n = data["n"] if kind == "cm" else base64.b64decode(data["n"]).decode()
            if int(n) < value:
                return False
        return True


def test_killing_a_worker_moves_its_shards_to_the_other_without_losing_updates(
    app: Deployment,
) -> None:
    d = app
    churn = Churn(d)
    wait_for(lambda: churn.at_least(d, dict(churn.last)), "the churn objects on the standby",
             timeout=60)
    hosts = hosts_by_pod(d)
    victim = max(d.workers, key=lambda w: len(hosts.get(w.name, [])))
    survivor = next(w for w in d.workers if w is not victim)
    moved = hosts.get(victim.name, [])
    assert moved, f"no shard host on either worker: {hosts}"
    churn.thread.start()
    try:
        time.sleep(2)
        d.podman.kill(d.container(victim))
        killed = time.monotonic()
        time.sleep(1)
        after_kill = dict(churn.last)  # values written after the kill: they must arrive

        def recovered() -> bool:
            h = hosts_by_pod(d)
            return (set(moved) <= set(h.get(survivor.name, []))
                    and churn.at_least(d, after_kill))

        wait_for(recovered, "the killed worker's shards running on the other, writing again",
                 timeout=120, every=0.5)
        recovery = time.monotonic() - killed
    finally:
        churn.stop.set()
        churn.thread.join(timeout=30)
    final = dict(churn.last)
    wait_for(lambda: churn.at_least(d, final), "every last update on the standby", timeout=60)
    lost = [k for k, v in final.items() if not churn.at_least(d, {k: v})]
    figures["worker_kill_recovery_s"] = round(recovery, 1)
    figures["worker_kill_hosts_moved"] = len(moved)
    figures["worker_kill_updates_written"] = churn.counter
    figures["worker_kill_lost_updates"] = len(lost)
    assert lost == []
    assert recovery <= RECOVERY_BOUND_S, f"recovered in {recovery:.1f} s"
    syncer = wait_for(lambda: synced(d, "default", APP_SYNCER), "shop-sync Synced", timeout=60)
    assert condition(syncer, "Degraded").get("status") == "False"


def test_the_head_stops_cleanly_within_its_grace_period(app: Deployment) -> None:
    d = app
    assert d.head is not None
    name = d.container(d.head)
    took = d.podman.stop(name, grace_s=d.head.grace_period_s)
    state = d.podman.inspect(name)["State"]
    logs = d.podman.logs(name)
    figures["head_stop_s"] = round(took, 1)
    assert not state["Running"]
    # 0: ray-syncer-head's own clean exit; 137 would be the SIGKILL after the grace period.
    assert state["ExitCode"] == 0, logs[-3000:]
    assert took < d.head.grace_period_s
    assert "stopped (exit code 0)" in logs, logs[-3000:]


def test_the_real_authorizer_denied_nothing(app: Deployment) -> None:
    d = app
    denied = {"source": audit_403s(d.source), "destination": audit_403s(d.dest)}
    figures["http_403"] = sum(map(len, denied.values()))
    assert denied == {"source": [], "destination": []}
    # Nor does any status report a refusal.
    for name in ("configmap-sync", APP_SYNCER):
        status = str((d.syncer("default", name) or {}).get("status"))
        assert "Forbidden" not in status, status
