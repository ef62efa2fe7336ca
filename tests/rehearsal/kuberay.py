"""The pods KubeRay would make from the RayCluster in deploy/, for running them as containers.

The rehearsal runs the head and worker pods of ``deploy/ray-cluster.yaml`` with podman. Every
field comes from the RayCluster as the source apiserver returns it after ``kubectl apply -k
deploy``: the container's command, args, env, resources, ports and securityContext, the pod's
ServiceAccount, fsGroup, volumes and grace period. What KubeRay adds is reproduced here from its
pod builder (ray-operator/controllers/ray/common/pod.go, KubeRay v1.x), and what the kubelet adds
(``$(VAR)`` expansion, the ServiceAccount token mount, ``KUBERNETES_SERVICE_HOST``) by
:func:`kubelet_env`:

* ``rayStartParams`` completed as KubeRay completes them (``address`` for workers,
  ``dashboard-host`` for the head, ``metrics-export-port``, ``block``,
  ``dashboard-agent-listen-port``, ``num-cpus`` and ``memory`` from the container's limits),
  then rendered sorted into ``ray start [--head] ...``, the value of ``KUBERAY_GEN_RAY_START_CMD``
  (the manifest sets ``ray.io/overwrite-container-cmd``, so the container's own command runs);
* the env KubeRay injects (``RAY_CLUSTER_NAME``, ``RAY_CLOUD_INSTANCE_ID``, ``RAY_NODE_TYPE_NAME``,
  ``RAY_PORT``, ``RAY_ADDRESS``, ``FQ_RAY_IP``/``RAY_IP`` on workers, ``RAY_AUTH_MODE`` and
  ``RAY_AUTH_TOKEN`` for ``authOptions.mode: token``);
* ``/dev/shm`` as a memory emptyDir the size of the memory limit.

One thing differs, because three pods share one host network here instead of each having its
own IP: every fixed port a pod listens on is moved to a free port (:class:`PortMap`), in the
``rayStartParams`` and in any argument that names it, and workers reach the head at 127.0.0.1
instead of its Service's DNS name. KubeRay's autoscaler sidecar (its own image and code, which
manages pods) is not run: the workers are the manifest's two replicas.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

DEFAULT_GCS_PORT = 6379
DEFAULT_METRICS_PORT = 8080
DEFAULT_AGENT_LISTEN_PORT = 52365
DEFAULT_DASHBOARD_PORT = 8265
DEFAULT_CLIENT_PORT = 10001
# Container port name -> the rayStartParam that sets it (KubeRay's port naming convention).
PORT_PARAMS = {
    "gcs-server": "port",
    "dashboard": "dashboard-port",
    "client": "ray-client-server-port",
    "metrics": "metrics-export-port",
}
# Ports Ray listens on by default (and KubeRay passes explicitly) without a named container port.
IMPLICIT_PORTS = {"dashboard-agent-listen-port": DEFAULT_AGENT_LISTEN_PORT}
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
_BINARY_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL_SUFFIX = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def memory_bytes(q: str) -> int:
    """A Kubernetes memory quantity in bytes ("3Gi" -> 3221225472)."""
    m = re.fullmatch(r"([0-9.]+)([KMGT]i|[kMGT])?", str(q))
    if not m:
        raise ValueError(f"not a memory quantity: {q!r}")
    unit = m.group(2) or ""
    return int(float(m.group(1)) * (_BINARY_SUFFIX.get(unit) or _DECIMAL_SUFFIX.get(unit) or 1))


def cpu_cores(q: str) -> float:
    """A Kubernetes CPU quantity in cores ("500m" -> 0.5)."""
    s = str(q)
    return int(s[:-1]) / 1000 if s.endswith("m") else float(s)


@dataclass
class PortMap:
    """Fixed ports of one pod -> the free host ports that stand in for them."""

    allocate: Callable[[], int]
    ports: dict[int, int] = field(default_factory=dict)

    def __call__(self, port: int) -> int:
        if port not in self.ports:
            self.ports[port] = self.allocate()
        return self.ports[port]

    def rewrite(self, arg: str) -> str:
        """``--flag=<fixed port>`` -> ``--flag=<its stand-in>``, for a port this pod declares."""
        m = re.fullmatch(r"(--[\w-]+=)(\d+)", arg)
        if m and int(m.group(2)) in self.ports:
            return f"{m.group(1)}{self.ports[int(m.group(2))]}"
        return arg


@dataclass
class Pod:
    """One Ray pod as KubeRay and the kubelet would start it."""

    name: str
    node_type: str  # "head" | "worker"
    group: str
    service_account: str
    command: list[str]
    args: list[str]
    env: dict[str, str]
    ports: dict[str, int]  # container port name -> the host port it has here
    memory_limit: int | None
    cpu_limit: float | None
    run_as_user: int | None
    run_as_group: int | None
    fs_group: int | None
    run_as_non_root: bool
    drop_capabilities: list[str]
    allow_privilege_escalation: bool
    read_only_root: bool
    seccomp_runtime_default: bool
    volume_mounts: list[tuple[str, str, bool]]  # (volume name, mount path, read-only)
    memory_volumes: set[str]  # emptyDirs with medium Memory
    shm_bytes: int | None
    grace_period_s: int
    start_params: dict[str, str]

    @property
    def ray_start_cmd(self) -> str:
        return self.env["KUBERAY_GEN_RAY_START_CMD"]


def complete_start_params(
    params: Mapping[str, Any], *, node_type: str, head_port: int, head_host: str,
    limits: Mapping[str, Any],
) -> dict[str, str]:
    """rayStartParams as KubeRay completes them (setMissingRayStartParams, then the limits)."""
    out = {k: str(v) for k, v in params.items()}
    if node_type == "worker":
        out.setdefault("address", f"{head_host}:{head_port}")
    else:
        out.setdefault("dashboard-host", "0.0.0.0")
    out.setdefault("metrics-export-port", str(DEFAULT_METRICS_PORT))
    out["block"] = "true"
    out.setdefault("dashboard-agent-listen-port", str(DEFAULT_AGENT_LISTEN_PORT))
    if "num-cpus" not in out and "cpu" in limits:
        # KubeRay's Quantity.Value() rounds up to a whole number.
        out["num-cpus"] = str(-(-int(cpu_cores(limits["cpu"]) * 1000) // 1000))
    if "memory" not in out and "memory" in limits:
        out["memory"] = str(memory_bytes(limits["memory"]))
    return out


def ray_start_command(node_type: str, params: Mapping[str, str]) -> str:
    """KubeRay's generateRayStartCommand: sorted flags; true/false are switches."""
    flags = []
    for key in sorted(params):
        value = params[key]
        if value.lower() in ("true", "false") and key not in ("log-color", "include-dashboard"):
            if value.lower() == "true":
                flags.append(f"--{key}")
        else:
            flags.append(f"--{key}={value}")
    return " ".join(["ray", "start", *(["--head"] if node_type == "head" else []), *flags])


def expand(value: str, env: Mapping[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion (``$$`` escapes; unknown names stay as written)."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, value)


def kubelet_env(*, api_host: str, api_port: int) -> dict[str, str]:
    """What the kubelet puts in every container's env for the in-cluster config."""
    return {
        "KUBERNETES_SERVICE_HOST": api_host,
        "KUBERNETES_SERVICE_PORT": str(api_port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(api_port),
    }


def build_pod(
    rc: Obj, *, group: Obj, pod_name: str, head: Pod | None, auth_token: str | None,
    api_host: str, api_port: int, allocate_port: Callable[[], int],
) -> Pod:
    """The pod KubeRay makes for ``group``: the headGroupSpec (``head=None``) or a workerGroupSpec
    (``head``: the head pod, whose GCS the worker joins)."""
    node_type = "head" if head is None else "worker"
    spec = rc["spec"]
    template = group["template"]
    pod_spec = template["spec"]
    (container,) = [c for c in pod_spec["containers"] if c["name"] in ("ray-head", "ray-worker")] \
        or pod_spec["containers"][:1]
    limits = container.get("resources", {}).get("limits", {})
    ports = PortMap(allocate_port)

    head_params = spec["headGroupSpec"].get("rayStartParams", {})
    head_port = int(head_params.get("port", DEFAULT_GCS_PORT))
    params = dict(group.get("rayStartParams", {}))
    if node_type == "head" and spec.get("enableInTreeAutoscaling"):
        # The autoscaler runs as a sidecar; KubeRay turns the head's own monitor off.
        params["no-monitor"] = "true"
    declared = {p["name"]: int(p["containerPort"]) for p in container.get("ports", []) if "name" in p}
    if node_type == "head":
        declared.setdefault("gcs-server", head_port)
        declared.setdefault("dashboard", DEFAULT_DASHBOARD_PORT)
        declared.setdefault("client", DEFAULT_CLIENT_PORT)
    declared.setdefault("metrics", DEFAULT_METRICS_PORT)
    # Every fixed port gets its stand-in; the rayStartParams that set them say so explicitly.
    host_ports = {name: ports(port) for name, port in declared.items()}
    for name, param in PORT_PARAMS.items():
        if name in declared:
            params[param] = str(host_ports[name])
    for param, default in IMPLICIT_PORTS.items():
        params[param] = str(ports(int(params.get(param, default))))
    # The head's GCS, as this pod reaches it: the head's stand-in port on the shared loopback.
    gcs_port = host_ports["gcs-server"] if head is None else head.ports["gcs-server"]
    head_addr = "127.0.0.1"

    start = complete_start_params(params, node_type=node_type, head_port=gcs_port,
                                  head_host=head_addr, limits=limits)
    cmd = ray_start_command(node_type, start)

    env: dict[str, str] = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = expand(str(e["value"]), env)
    group_name = "headgroup" if node_type == "head" else group["groupName"]
    if node_type == "worker":
        env["FQ_RAY_IP"] = head_addr
        env["RAY_IP"] = head_addr
    env["RAY_CLUSTER_NAME"] = rc["metadata"]["name"]
    env["RAY_CLOUD_INSTANCE_ID"] = pod_name
    env["RAY_NODE_TYPE_NAME"] = group_name
    env["KUBERAY_GEN_RAY_START_CMD"] = cmd
    env.setdefault("RAY_PORT", str(gcs_port))
    env.setdefault("RAY_ADDRESS", f"{head_addr}:{gcs_port}")
    env.setdefault("RAY_USAGE_STATS_KUBERAY_IN_USE", "1")
    env.setdefault("RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE", "1")
    if (spec.get("authOptions") or {}).get("mode") == "token":
        assert auth_token, "authOptions.mode=token needs the token KubeRay would generate"
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN"] = auth_token
    env.update(kubelet_env(api_host=api_host, api_port=api_port))

    command = [expand(c, env) for c in container.get("command", [])]
    args = [ports.rewrite(expand(a, env)) for a in container.get("args", [])]

    pod_sc = pod_spec.get("securityContext", {})
    sc = container.get("securityContext", {})
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    mounts = [(m["name"], m["mountPath"], bool(m.get("readOnly"))) for m in container.get("volumeMounts", [])]
    memory_limit = memory_bytes(limits["memory"]) if "memory" in limits else None
    has_shm = any(path == "/dev/shm" for _, path, _ in mounts)
    return Pod(
        name=pod_name, node_type=node_type, group=group_name,
        service_account=pod_spec.get("serviceAccountName", "default"),
        command=command, args=args, env=env, ports=host_ports,
        memory_limit=memory_limit,
        cpu_limit=cpu_cores(limits["cpu"]) if "cpu" in limits else None,
        run_as_user=sc.get("runAsUser", pod_sc.get("runAsUser")),
        run_as_group=sc.get("runAsGroup", pod_sc.get("runAsGroup")),
        fs_group=pod_sc.get("fsGroup"),
        run_as_non_root=bool(sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot", False))),
        drop_capabilities=list((sc.get("capabilities") or {}).get("drop", [])),
        allow_privilege_escalation=bool(sc.get("allowPrivilegeEscalation", True)),
        read_only_root=bool(sc.get("readOnlyRootFilesystem", False)),
        seccomp_runtime_default=(sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {})
        .get("type") == "RuntimeDefault",
        volume_mounts=mounts,
        memory_volumes={n for n, v in volumes.items()
                        if (v.get("emptyDir") or {}).get("medium") == "Memory"},
        # KubeRay mounts a memory emptyDir at /dev/shm sized to the memory limit (object store).
        shm_bytes=None if has_shm else memory_limit,
        grace_period_s=int(pod_spec.get("terminationGracePeriodSeconds", 30)),
        start_params=start,
    )
