"""deploy/ray-cluster.yaml: valid for KubeRay v1.7, in step with the package, and wired right.

Schema: the KubeRay CRD in tests/deploy/data (vendored, never fetched) is converted from
openAPIV3Schema to JSON Schema. Unknown fields are rejected, as `kubectl apply`'s default strict
field validation would. Wiring: the Ray version and image agree with pyproject.toml and the
package; the head runs the operator with flags `ray-syncer run` accepts; probes, ports, auth
and the ServiceAccount agree with the other manifests.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.manifests import (
    BASE,
    DATA,
    REPO,
    Obj,
    containers,
    kustomize_images,
    load_one,
    package_version,
    pod_templates,
    ray_version,
)


def to_json_schema(node: Any) -> Any:
    """openAPIV3Schema (structural, Kubernetes dialect) -> JSON Schema draft 2020-12."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    out.pop("nullable", None)
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def _schema() -> Obj:
    # 900 kB of YAML: the C loader when present keeps this well under a second.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load((DATA / "ray.io_rayclusters.yaml").read_text(), Loader=loader)
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return to_json_schema(v1["schema"]["openAPIV3Schema"])


SCHEMA = _schema()


def _raycluster() -> Obj:
    return load_one(BASE / "ray-cluster.yaml", kind="RayCluster")


def _errors(obj: Obj) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)
    ]


def test_raycluster_validates_against_the_kuberay_v1_7_crd() -> None:
    rc = _raycluster()
    assert rc["apiVersion"] == "ray.io/v1"
    assert _errors(rc) == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda rc: rc["spec"].__setitem__("authOption", {"mode": "token"}),
        lambda rc: rc["spec"]["authOptions"].__setitem__("mode", "tokens"),
        lambda rc: rc["spec"]["workerGroupSpecs"][0].__setitem__("maxReplicas", "ten"),
        lambda rc: rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0].__setitem__(
            "imagePullPolicy", 3
        ),
    ],
    ids=["unknown-field", "bad-enum", "bad-type", "bad-type-in-pod-template"],
)
def test_the_schema_check_rejects_broken_clusters(mutate: Any) -> None:
    rc = copy.deepcopy(_raycluster())
    mutate(rc)
    assert _errors(rc), "the converted schema accepted a broken RayCluster"


def test_ray_version_is_the_one_pyproject_pins() -> None:
    assert _raycluster()["spec"]["rayVersion"] == ray_version()


def test_every_ray_container_runs_this_release_of_the_image() -> None:
    images = {c["image"] for _, t in pod_templates(_raycluster()) for c in containers(t)}
    assert images == {f"ray-syncer:{package_version()}"}
    # The kustomize override keeps the same tag, so `apply -k` deploys this release too.
    overrides = {i["name"]: i for i in kustomize_images(BASE)}
    assert overrides["ray-syncer"]["newTag"] == package_version()
    assert not any(":latest" in i or ":" not in i for i in images)


def test_every_ray_container_runs_the_lean_ray_a_local_ray_gets() -> None:
    # One list of settings (fleet/local.py), measured by benchmarks/footprint.py.
    from ray_syncer.fleet.local import LEAN_RAY_ENV

    for _, template in pod_templates(_raycluster()):
        for c in containers(template):
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            assert {k: env.get(k) for k in LEAN_RAY_ENV} == LEAN_RAY_ENV, c["name"]


def _head() -> Obj:
    return _raycluster()["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]


def test_head_runs_the_operator_beside_ray() -> None:
    rc = _raycluster()
    # KubeRay must leave our command alone and hand us its `ray start` in an env var.
    assert rc["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    head = _head()
    assert head["command"] == ["ray-syncer-head"]
    # Every worker starts Ray itself, since the annotation covers all Ray containers.
    for where, template in pod_templates(rc):
        if where.startswith("worker"):
            (worker,) = template["spec"]["containers"]
            assert "$KUBERAY_GEN_RAY_START_CMD" in " ".join(worker["args"])


def test_head_args_parse_as_ray_syncer_run_flags() -> None:
    # The exact argv ray-syncer-head builds, through the real `ray-syncer run` parser.
    from ray_syncer.cli import build_parser

    head = _head()
    env = {e["name"]: e["value"] for e in head["env"] if "value" in e}
    refs = re.findall(r"\$\((\w+)\)", " ".join(head["args"]))
    assert set(refs) <= env.keys(), "args reference $(VAR)s the container does not define"
    argv = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in head["args"]]
    args = build_parser().parse_args(["run", "--ray-address=auto", *argv])
    assert args.ray_address == "auto"
    assert args.metrics_port == 9090
    assert args.cluster_name == env["KRMSYNCER_CLUSTER_NAME"]


def test_head_arg_check_rejects_unknown_flags() -> None:
    from ray_syncer.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--metrics-prot=9090"])


def test_probes_hit_the_operator_health_endpoints() -> None:
    head = _head()
    ports = {p["name"]: p["containerPort"] for p in head["ports"]}
    expected = {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    for probe, path in expected.items():
        get = head[probe]["httpGet"]
        assert get["path"] == path
        assert ports[get["port"]] == 9090
    # The liveness budget outlasts ray-syncer-head's 30 s restart backoff.
    live = head["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] > 30


def test_head_exposes_the_documented_ports() -> None:
    ports = {p["name"]: p["containerPort"] for p in _head()["ports"]}
    assert ports == {
        "gcs-server": 6379,
        "dashboard": 8265,
        "client": 10001,
        "metrics": 8080,
        "operator": 9090,
    }
    assert _raycluster()["spec"]["headGroupSpec"]["rayStartParams"]["metrics-export-port"] == "8080"


def test_ray_token_auth_is_on() -> None:
    rc = _raycluster()
    assert rc["spec"]["authOptions"] == {"mode": "token"}
    # Nobody switches it off again per container.
    for _, t in pod_templates(rc):
        for c in containers(t):
            for e in c.get("env", []):
                assert e["name"] not in {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"}, e


def test_pods_run_as_the_operator_service_account_and_not_as_root() -> None:
    rc = _raycluster()
    sa = load_one(BASE / "rbac.yaml", kind="ServiceAccount")
    for where, t in pod_templates(rc):
        spec = t["spec"]
        assert spec["serviceAccountName"] == sa["metadata"]["name"], where
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        for c in containers(t):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            # A read-only root; what Ray writes goes to emptyDirs under /tmp (the rehearsal runs it).
            assert sc["readOnlyRootFilesystem"] is True, where
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            volumes = {v["name"]: v for v in spec["volumes"]}
            for path in ("/tmp", "/tmp/ray"):
                assert "emptyDir" in volumes[mounts[path]], (where, path)
            res = c["resources"]
            assert res["requests"]["memory"] == res["limits"]["memory"], "Ray needs memory=limit"
    assert rc["metadata"]["namespace"] == sa["metadata"]["namespace"]


def test_workers_autoscale_within_bounds() -> None:
    rc = _raycluster()
    assert rc["spec"]["enableInTreeAutoscaling"] is True
    for g in rc["spec"]["workerGroupSpecs"]:
        assert 1 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
    assert rc["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


# -- packing and sizing: what the comments promise, against what was measured ----------------

SHARDS_RESULT = REPO / "benchmarks" / "results" / "latest" / "memory" / "shards.json"


def _workers() -> Obj:
    (group,) = _raycluster()["spec"]["workerGroupSpecs"]
    return group


def _mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_the_deployment_packs_shards_automatically() -> None:
    from ray_syncer.cli import build_parser

    head = _head()
    env = {e["name"]: e["value"] for e in head["env"] if "value" in e}
    argv = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in head["args"]]
    assert build_parser().parse_args(["run", *argv]).max_shards_per_actor == 0
    assert build_parser().parse_args(["run"]).max_shards_per_actor == 0  # also the default


def test_a_lost_worker_leaves_room_for_its_hosts() -> None:
    # 1,000 shards are 20 packed hosts; when one worker is lost, the others hold them all.
    from ray_syncer.fleet.actors import ActorSettings
    from ray_syncer.fleet.plan import AUTO_PACK_SIZE

    group = _workers()
    per_worker = float(group["rayStartParams"]["num-cpus"]) / ActorSettings().host_num_cpus
    assert group["minReplicas"] >= 2
    assert (group["minReplicas"] - 1) * per_worker >= 1000 / AUTO_PACK_SIZE


def test_the_sizing_comment_matches_the_measured_memory() -> None:
    text = (BASE / "ray-cluster.yaml").read_text()
    found = re.search(r"a shard host: ~ (\d+) MiB with 1 shard, ~ (\d+) MiB with 50 shards", text)
    assert found, "the sizing comment lost its measured figures"
    one, fifty = float(found.group(1)), float(found.group(2))
    import json

    points = json.loads(SHARDS_RESULT.read_text())["points"]
    measured_one = max(p["memory"]["per_host_pss_mb"] for p in points if p["shards_per_host"] == 1)
    measured_fifty = max(p["memory"]["per_host_pss_mb"] for p in points if p["shards_per_host"] == 50)
    assert abs(one - measured_one) <= 0.25 * measured_one, (one, measured_one)
    assert abs(fifty - measured_fifty) <= 0.25 * measured_fifty, (fifty, measured_fifty)
    # A worker fits the hosts its CPUs take, full (50 shards each), and its own Ray processes.
    from ray_syncer.fleet.actors import ActorSettings

    group = _workers()
    (container,) = group["template"]["spec"]["containers"]
    hosts = float(group["rayStartParams"]["num-cpus"]) / ActorSettings().host_num_cpus
    assert _mib(container["resources"]["limits"]["memory"]) >= hosts * measured_fifty + 150
