"""The deployment, rehearsed: deploy/ installed on two real control planes as the README tells a
user, and the RayCluster's pods run as containers of the built image.

The install is the README's own blocks of "Install on Kubernetes with KubeRay" (tagged
``readme-test: rehearsal``), run through bash as written:

1. the standby: ``apply --server-side -k deploy/destination`` and the destination example RBAC;
2. the standby's kubeconfig, made from the ``krmsyncer-writer`` token;
3. the active cluster: KubeRay's RayCluster CRD (the stand-in for installing the KubeRay
   operator), ``apply --server-side -k deploy/`` and the source example RBAC;
4. the kubeconfig Secret and ``examples/krmsyncer-usage.yaml``; then the walkthrough's ConfigMap.

Then what KubeRay would do: the RayCluster is read back from the apiserver, its token Secret is
made, and the head pod and the worker group's replicas are started (tests/rehearsal/kuberay.py
says how each pod is built, podman.py how it is run). Each pod reads the source with a
TokenRequest token of the ``krmsyncer`` ServiceAccount, mounted where the in-cluster config
looks. Nothing here is the operator's own code: the containers run what the image holds.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ray_syncer_testkit.envtest import Assets, ControlPlane, control_planes, free_port

from tests.deploy.manifests import DATA
from tests.readme.blocks import blocks
from tests.readme.shell import Shell
from tests.rehearsal.kuberay import Obj, Pod, build_pod
from tests.rehearsal.podman import Podman

T = TypeVar("T")
NAMESPACE = "krmsyncer-system"
CLUSTER = "krmsyncer"


def wait_for(check: Callable[[], T | None], what: str, *, timeout: float,
             every: float = 0.5) -> T:
    """Polls ``check`` until it returns something truthy; fails naming ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # retried until the deadline, then reported
            last_error = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}"
                                 + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(every)


def http_get(url: str, *, token: str | None = None, timeout: float = 5) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


@dataclass
class Deployment:
    source: ControlPlane
    dest: ControlPlane
    podman: Podman
    folder: Path
    image: str = ""
    ray_token: str = ""
    head: Pod | None = None
    workers: list[Pod] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    # -- kubectl, as the README runs it ----------------------------------------------------

    def kubectl(self, plane: ControlPlane, *args: str, input: str | None = None,
                check: bool = True) -> str:
        proc = subprocess.run(["kubectl", "--kubeconfig", str(plane.kubeconfig_path), *args],
                              capture_output=True, text=True, input=input, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def get(self, plane: ControlPlane, *args: str) -> Obj | None:
        out = self.kubectl(plane, "get", *args, "-o", "json", "--ignore-not-found")
        return json.loads(out) if out.strip() else None

    # -- the install ------------------------------------------------------------------------

    def install(self) -> None:
        """The README's "Install on Kubernetes with KubeRay" blocks, run as written (steps 3 to
        6), with the contexts ``active`` and ``standby``. Between them, what a real cluster does
        on its own or the README's other steps bring: the token controller filling the writer's
        token, and KubeRay's RayCluster CRD (step 2 installs it with the KubeRay operator)."""
        t0 = time.monotonic()
        src, dst = self.source, self.dest
        prepare, kubeconfig, operator, syncer = blocks("rehearsal")
        shell = Shell(self.folder, {"active": src, "standby": dst}, links=("deploy", "examples"))
        shell.run(prepare)
        wait_for(lambda: self.kubectl(dst, "-n", NAMESPACE, "get", "secret", "krmsyncer-writer-token",
                                      "-o", "jsonpath={.data.token}"),
                 "the token controller to fill krmsyncer-writer-token", timeout=60)
        shell.run(kubeconfig)
        self.kubectl(src, "apply", "--server-side", "-f", str(DATA / "ray.io_rayclusters.yaml"))
        wait_for(lambda: condition(self.get(src, "crd", "rayclusters.ray.io"), "Established")
                 .get("status") == "True", "the RayCluster CRD to be Established", timeout=60)
        shell.run(operator)
        shell.run(syncer)
        # The walkthrough's ConfigMap, which the tests expect on the standby.
        self.kubectl(src, "create", "configmap", "test-sync-data", "--from-literal=key=value1")
        self.timings["install_s"] = time.monotonic() - t0

    # -- what KubeRay and the kubelet do ------------------------------------------------------

    def service_account_files(self) -> dict[str, str]:
        """A TokenRequest token for the pods' ServiceAccount, the cluster CA and the namespace."""
        token = self.kubectl(self.source, "-n", NAMESPACE, "create", "token", CLUSTER,
                             "--duration=2h").strip()
        return {"token": token, "ca.crt": self.source.ca_pem.decode(), "namespace": NAMESPACE}

    def start_pods(self) -> None:
        t0 = time.monotonic()
        rc = self.get(self.source, "-n", NAMESPACE, "raycluster", CLUSTER)
        assert rc is not None, "kubectl apply -k deploy/ made no RayCluster"
        # KubeRay's token Secret (authOptions.mode: token), named after the cluster.
        self.ray_token = secrets.token_hex(32)
        self.kubectl(self.source, "-n", NAMESPACE, "create", "secret", "generic", CLUSTER,
                     f"--from-literal=auth_token={self.ray_token}")
        sa = self.service_account_files()
        spec = rc["spec"]
        common: dict[str, Any] = {"auth_token": self.ray_token, "api_host": "127.0.0.1",
                                  "api_port": self.source.port, "allocate_port": free_port}
        head_group = spec["headGroupSpec"]
        self.image = head_group["template"]["spec"]["containers"][0]["image"]
        self.head = build_pod(rc, group=head_group, pod_name=f"{CLUSTER}-head-{_suffix()}",
                              head=None, **common)
        self.podman.run(self.head, image=self.image, sa_files=sa)
        wait_for(lambda: http_get(self.operator_url("/healthz"))[0] == 200,
                 "the head's startup probe (/healthz on the operator port)", timeout=180, every=1)
        self.timings["head_ready_s"] = time.monotonic() - t0
        for group in spec.get("workerGroupSpecs", []):
            for _ in range(int(group.get("replicas", 1))):
                pod = build_pod(rc, group=group, head=self.head,
                                pod_name=f"{CLUSTER}-{group['groupName']}-worker-{_suffix()}",
                                **common)
                self.podman.run(pod, image=_image_of(group), sa_files=sa)
                self.workers.append(pod)
        self.timings["pods_started_s"] = time.monotonic() - t0

    # -- what a user looks at -----------------------------------------------------------------

    def operator_url(self, path: str) -> str:
        assert self.head is not None
        return f"http://127.0.0.1:{self.head.ports['operator']}{path}"

    def dashboard_url(self, path: str) -> str:
        assert self.head is not None
        return f"http://127.0.0.1:{self.head.ports['dashboard']}{path}"

    def dashboard(self, path: str) -> Any:
        status, body = http_get(self.dashboard_url(path), token=self.ray_token)
        assert status == 200, f"dashboard {path}: HTTP {status}: {body[:300]}"
        return json.loads(body)

    def node_of_pod(self) -> dict[str, str]:
        """Ray node id -> the pod (container) it runs in, from each pod's own raylet log."""
        out: dict[str, str] = {}
        for pod in [self.head, *self.workers]:
            assert pod is not None
            for log in self.podman.volume(pod, "ray-logs").glob("session_*/logs/raylet.out"):
                for line in log.read_text(errors="replace").splitlines():
                    node = _node_id_in(line)
                    if node:
                        out[node] = pod.name
        return out

    def diagnose(self) -> str:
        """The tail of every pod's log (container output and the Ray head's own logs)."""
        parts = []
        for pod in [self.head, *self.workers]:
            if pod is not None:
                parts.append(f"--- {pod.name} (podman logs) ---\n"
                             + self.podman.logs(self.container(pod))[-4000:])
        return "\n".join(parts)

    def container(self, pod: Pod) -> str:
        return self.podman.container(pod)

    def syncer(self, namespace: str, name: str) -> Obj | None:
        return self.get(self.source, "-n", namespace, "krmsyncer", name)


def condition(syncer: Obj | None, ctype: str) -> dict[str, Any]:
    for c in ((syncer or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return {}


def _node_id_in(line: str) -> str | None:
    # raylet.out: "... Raylet of id, <hex> started. Raylet consists of node_manager and ..."
    marker = "Raylet of id, "
    if marker in line:
        return line.split(marker, 1)[1].split()[0].rstrip(",.")
    return None


def _image_of(group: Obj) -> str:
    return str(group["template"]["spec"]["containers"][0]["image"])


def _suffix() -> str:
    return secrets.token_hex(3)[:5]


def audit_403s(plane: ControlPlane) -> list[str]:
    """Every request the real authorizer denied, as "user verb uri"."""
    return [f"{e.get('user', {}).get('username')} {e.get('verb')} {e.get('requestURI')}"
            for e in plane.audit_events()
            if (e.get("responseStatus") or {}).get("code") == 403]


@contextlib.contextmanager
def rehearsal(assets: Assets) -> Iterator[Deployment]:
    """Two control planes, deploy/ installed, the pods running; everything removed afterwards
    (containers, their folders, the control planes), however the body ends."""
    folder = Path(tempfile.mkdtemp(prefix="krmsyncer-rehearsal-"))
    podman = Podman(secrets.token_hex(4), folder / "pods")
    try:
        with control_planes(("source", "destination"), assets=assets) as planes:
            d = Deployment(planes["source"], planes["destination"], podman, folder)
            try:
                try:
                    d.install()
                    d.start_pods()
                except AssertionError as e:
                    raise AssertionError(f"{e}\n{d.diagnose()}") from e
                yield d
            finally:
                podman.remove_all()
    finally:
        podman.remove_all()
        subprocess.run(["rm", "-rf", str(folder)], check=False)
