"""The rehearsal's model of KubeRay's pod builder, on the applied RayCluster's own text.

Pinned to what KubeRay v1.x does (ray-operator/controllers/ray/common/pod.go): completed
rayStartParams, sorted flags with true/false as switches, the env it injects, and the kubelet's
``$(VAR)`` expansion. And the one deviation, stand-in ports, must be applied everywhere a port is
named, or the head would wait on a GCS port nobody listens on.
"""

from __future__ import annotations

import itertools

from tests.deploy.manifests import BASE, load_one
from tests.rehearsal.kuberay import (
    build_pod,
    complete_start_params,
    expand,
    memory_bytes,
    ray_start_command,
)


def test_start_params_are_completed_as_kuberay_completes_them() -> None:
    head = complete_start_params({"num-cpus": "0"}, node_type="head", head_port=6379,
                                 head_host="h", limits={"cpu": "2", "memory": "3Gi"})
    assert head == {"num-cpus": "0", "dashboard-host": "0.0.0.0", "metrics-export-port": "8080",
                    "block": "true", "dashboard-agent-listen-port": "52365",
                    "memory": "3221225472"}
    worker = complete_start_params({}, node_type="worker", head_port=6379, head_host="svc",
                                   limits={"cpu": "1500m"})
    assert worker["address"] == "svc:6379" and worker["num-cpus"] == "2"  # rounded up


def test_the_command_is_sorted_with_switches() -> None:
    cmd = ray_start_command("head", {"num-cpus": "0", "block": "true", "no-monitor": "false",
                                     "include-dashboard": "false"})
    assert cmd == "ray start --head --block --include-dashboard=false --num-cpus=0"


def test_kubelet_expansion() -> None:
    env = {"A": "x"}
    assert expand("--n=$(A) $(B) $$(A)", env) == "--n=x $(B) $(A)"
    assert memory_bytes("6Gi") == 6 * 2**30 and memory_bytes("200M") == 200_000_000


def test_pods_from_the_manifest_use_their_stand_in_ports_everywhere() -> None:
    rc = load_one(BASE / "ray-cluster.yaml", kind="RayCluster")
    ports = itertools.count(40000)
    common = {"auth_token": "t", "api_host": "127.0.0.1", "api_port": 6443,
              "allocate_port": lambda: next(ports)}
    head = build_pod(rc, group=rc["spec"]["headGroupSpec"], pod_name="h", head=None, **common)
    (group,) = rc["spec"]["workerGroupSpecs"]
    worker = build_pod(rc, group=group, pod_name="w", head=head, **common)
    gcs = head.ports["gcs-server"]
    assert f"--port={gcs}" in head.ray_start_cmd and "--no-monitor" in head.ray_start_cmd
    assert head.env["RAY_PORT"] == str(gcs)  # ray-syncer-head waits on it
    assert f"--metrics-port={head.ports['operator']}" in head.args
    assert "--cluster-name=primary" in head.args  # $(KRMSYNCER_CLUSTER_NAME), expanded
    assert f"--address=127.0.0.1:{gcs}" in worker.ray_start_cmd
    assert not {6379, 8080, 8265, 9090, 10001, 52365} & {
        int(a.split("=")[1]) for a in [*head.ray_start_cmd.split(), *worker.ray_start_cmd.split(),
                                       *head.args] if a.split("=")[-1].isdigit() and "port" in a}
    assert head.env["RAY_AUTH_MODE"] == worker.env["RAY_AUTH_MODE"] == "token"
    assert worker.read_only_root and worker.run_as_user == 1000 and worker.fs_group == 100
    assert worker.shm_bytes == 6 * 2**30
