"""Real Kubernetes control planes for tests and benchmarks, envtest-style.

controller-runtime's envtest convention: ``KUBEBUILDER_ASSETS`` names a folder
holding ``kube-apiserver`` and ``etcd`` (and optionally
``kube-controller-manager``). :class:`ControlPlane` starts one cluster from
them on loopback: etcd, then kube-apiserver with TLS, token auth and RBAC,
then the controller-manager when it is there (namespace deletion, garbage
collection, the ``default`` ServiceAccount, ``kube-root-ca.crt``). Each cluster
lives in a temporary folder of its own, on free ports, and writes an admin
kubeconfig that the product, the official client and kubectl all accept.

Teardown is the point of this module: the children are started with
``PR_SET_PDEATHSIG`` so the kernel kills them if this process dies for any
reason (SIGKILL included), :meth:`ControlPlane.stop` ends them in reverse
order with a bounded wait, and an ``atexit`` hook stops whatever is still
running. No test run leaves an etcd or an apiserver behind.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ASSETS_ENV = "KUBEBUILDER_ASSETS"
ADMIN_USER = "envtest-admin"
# kube-controller-manager controllers that need a cloud, nodes or this fork's extra CA publisher.
_KCM_CONTROLLERS = ("*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service,-route,"
                    "-service-ca-certificate-publisher-controller")


@dataclass(frozen=True)
class Assets:
    """The binaries of one ``KUBEBUILDER_ASSETS`` folder."""

    folder: Path
    apiserver: Path
    etcd: Path
    controller_manager: Path | None


def find_assets(env: Mapping[str, str] | None = None) -> tuple[Assets | None, str]:
    """The assets named by ``KUBEBUILDER_ASSETS``, or None and the reason there are none."""
    env = os.environ if env is None else env
    raw = env.get(ASSETS_ENV, "").strip()
    if not raw:
        return None, f"{ASSETS_ENV} is not set (point it at a folder with kube-apiserver and etcd)"
    folder = Path(raw).expanduser()
    missing = [b for b in ("kube-apiserver", "etcd") if not os.access(folder / b, os.X_OK)]
    if missing:
        return None, f"{ASSETS_ENV}={raw} has no executable {' or '.join(missing)}"
    kcm = folder / "kube-controller-manager"
    return Assets(folder, folder / "kube-apiserver", folder / "etcd",
                  kcm if os.access(kcm, os.X_OK) else None), ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the kernel sends SIGKILL when our process exits.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class _Pki:
    """The CA, the apiserver's serving certificate and the service-account key pair."""

    def __init__(self, folder: Path) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "envtest-ca")])
        ca = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [
            x509.DNSName("localhost"), x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        serving = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = serialization.Encoding.PEM
        pkcs8 = serialization.PrivateFormat.PKCS8
        none = serialization.NoEncryption()
        self.ca_pem = ca.public_bytes(pem)
        self.ca_crt = folder / "ca.crt"
        self.ca_key = folder / "ca.key"
        self.serving_crt = folder / "apiserver.crt"
        self.serving_key = folder / "apiserver.key"
        self.sa_key = folder / "sa.key"
        self.sa_pub = folder / "sa.pub"
        self.ca_crt.write_bytes(self.ca_pem)
        self.ca_key.write_bytes(ca_key.private_bytes(pem, pkcs8, none))
        self.serving_crt.write_bytes(serving.public_bytes(pem))
        self.serving_key.write_bytes(key.private_bytes(pem, pkcs8, none))
        self.sa_key.write_bytes(sa_key.private_bytes(pem, pkcs8, none))
        self.sa_pub.write_bytes(sa_key.public_key().public_bytes(
            pem, serialization.PublicFormat.SubjectPublicKeyInfo))
        for p in (self.ca_key, self.serving_key, self.sa_key):
            p.chmod(0o600)


@dataclass
class ControlPlaneOptions:
    controller_manager: bool = True  # when the assets have one
    # How often the apiserver compacts etcd: short, so that 410 Gone is reachable in tests.
    compaction_interval: str = "10s"
    # Extra users for the token file: name -> groups. Each gets a fresh token (``tokens``).
    users: dict[str, list[str]] = field(default_factory=dict)
    start_timeout_s: float = 90.0
    # An audit log of every request (metadata only): the real cluster's request log for tests.
    # Off for benchmarks, where its cost would be measured too.
    audit: bool = True
    extra_apiserver_flags: tuple[str, ...] = ()


class ControlPlane:
    """One real cluster: etcd, kube-apiserver and (optionally) kube-controller-manager."""

    def __init__(self, assets: Assets, *, name: str, folder: Path,
                 options: ControlPlaneOptions | None = None) -> None:
        self.assets = assets
        self.name = name
        self.folder = folder
        self.options = options or ControlPlaneOptions()
        self.tokens: dict[str, str] = {}
        self.port = 0
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._pki: _Pki | None = None

    # -- what a client needs ----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return self.tokens[ADMIN_USER]

    @property
    def ca_pem(self) -> bytes:
        assert self._pki is not None
        return self._pki.ca_pem

    @property
    def has_controller_manager(self) -> bool:
        return any(n == "kube-controller-manager" for n, _ in self._procs)

    def kubeconfig(self, *, user: str = ADMIN_USER) -> str:
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.name, "cluster": {
                "server": self.url,
                "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
            }}],
            "users": [{"name": user, "user": {"token": self.tokens[user]}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": user}}],
            "current-context": self.name,
        }
        return yaml.safe_dump(doc, sort_keys=False)

    @property
    def kubeconfig_path(self) -> Path:
        return self.folder / "kubeconfig"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        _live.add(self)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._pki = pki = _Pki(self.folder)
        users = {ADMIN_USER: ["system:masters"], **self.options.users}
        self.tokens = {u: secrets.token_hex(16) for u in users}
        lines = [f'{self.tokens[u]},{u},{u}-uid,"{",".join(g)}"' for u, g in users.items()]
        (self.folder / "tokens.csv").write_text("\n".join(lines) + "\n")
        (self.folder / "tokens.csv").chmod(0o600)

        etcd_port, peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._spawn("etcd", [
            str(self.assets.etcd), f"--name={self.name}",
            f"--data-dir={self.folder / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster={self.name}=http://127.0.0.1:{peer_port}",
            "--initial-cluster-state=new", "--listen-metrics-urls=",
            "--unsafe-no-fsync", "--quota-backend-bytes=4294967296", "--log-level=warn",
        ])
        self._wait("etcd", lambda: _http_ok(f"{etcd_url}/health"))

        self.port = free_port()
        self._spawn("kube-apiserver", [
            str(self.assets.apiserver),
            f"--etcd-servers={etcd_url}",
            f"--secure-port={self.port}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--tls-cert-file={pki.serving_crt}", f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_crt}",
            f"--token-auth-file={self.folder / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--disable-admission-plugins=ServiceAccount",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--endpoint-reconciler-type=none",
            f"--etcd-compaction-interval={self.options.compaction_interval}",
            *self._audit_flags(),
            *self.options.extra_apiserver_flags,
        ])
        self.kubeconfig_path.write_text(self.kubeconfig())
        self.kubeconfig_path.chmod(0o600)
        self._wait("kube-apiserver", lambda: self._get("/readyz") == 200)

        if self.options.controller_manager and self.assets.controller_manager is not None:
            kc = str(self.kubeconfig_path)
            self._spawn("kube-controller-manager", [
                str(self.assets.controller_manager),
                f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}", "--authentication-skip-lookup=true",
                f"--client-ca-file={pki.ca_crt}",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_crt}",
                f"--cluster-signing-cert-file={pki.ca_crt}",
                f"--cluster-signing-key-file={pki.ca_key}",
                "--use-service-account-credentials=false", "--leader-elect=false",
                "--bind-address=127.0.0.1", "--secure-port=0",
                f"--controllers={_KCM_CONTROLLERS}",
            ])
            # Ready when it has done its first job: the default namespace's ServiceAccount.
            self._wait("kube-controller-manager",
                       lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default") == 200)

    def _audit_flags(self) -> list[str]:
        if not self.options.audit:
            return []
        policy = self.folder / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump({
            "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
            "omitStages": ["RequestReceived", "ResponseStarted"],
            "rules": [{"level": "Metadata"}],
        }))
        return [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_path}",
                "--audit-log-format=json", "--audit-log-mode=blocking", "--audit-log-maxbackup=0"]

    @property
    def audit_path(self) -> Path:
        return self.folder / "audit.log"

    def audit_offset(self) -> int:
        """Where the audit log ends now: pass it to :meth:`audit_events` to read what follows."""
        try:
            return self.audit_path.stat().st_size
        except FileNotFoundError:
            return 0

    def audit_events(self, since: int = 0) -> list[dict[str, Any]]:
        """The audit events (one per completed request) written after offset ``since``."""
        if not self.options.audit:
            raise RuntimeError(f"{self.name}: started without an audit log")
        try:
            with open(self.audit_path, "rb") as f:
                f.seek(since)
                data = f.read()
        except FileNotFoundError:
            return []
        # The apiserver may be mid-line: only whole lines count.
        whole = data[: data.rfind(b"\n") + 1]
        return [json.loads(line) for line in whole.splitlines() if line.strip()]

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    cwd=self.folder, preexec_fn=_die_with_parent,
                                    start_new_session=True)
        finally:
            log.close()
        self._procs.append((name, proc))

    def _wait(self, name: str, ready: object) -> None:
        deadline = time.monotonic() + self.options.start_timeout_s
        proc = dict(self._procs)[name]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.name}: {name} exited with {proc.returncode}:\n"
                                   f"{self.log_tail(name)}")
            with contextlib.suppress(OSError, ValueError):
                if ready():  # type: ignore[operator]
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: {name} not ready after {self.options.start_timeout_s:.0f}s:\n"
                           f"{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.folder / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _get(self, path: str) -> int:
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def stop(self, *, grace_s: float = 2.0) -> None:
        """Ends the processes newest first: SIGTERM, then SIGKILL after ``grace_s``.

        One at a time, because an apiserver whose etcd is already gone spends its whole
        shutdown retrying etcd. The data is throwaway, so a kill loses nothing.
        """
        for _name, proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    proc.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait(timeout=10)
        self._procs.clear()
        _live.discard(self)

    def pids(self) -> list[int]:
        return [p.pid for _, p in self._procs if p.poll() is None]

    def named_pids(self) -> dict[str, int]:
        """``etcd``, ``kube-apiserver``, ... -> pid, for those still running."""
        return {n: p.pid for n, p in self._procs if p.poll() is None}


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:
        return int(r.status) == 200


_live: set[ControlPlane] = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        for plane in list(_live):
            with contextlib.suppress(Exception):
                plane.stop(grace_s=1.0)


@contextlib.contextmanager
def control_planes(
    names: tuple[str, ...], *, assets: Assets, options: ControlPlaneOptions | None = None,
    keep_folder: bool = False,
) -> Iterator[dict[str, ControlPlane]]:
    """Starts one cluster per name (one after the other: 2 cores), yields them, stops them all."""
    folder = Path(tempfile.mkdtemp(prefix="krmsyncer-envtest-"))
    planes: dict[str, ControlPlane] = {}
    try:
        for name in names:
            planes[name] = ControlPlane(assets, name=name, folder=folder / name, options=options).start()
        yield planes
    finally:
        for plane in reversed(list(planes.values())):
            plane.stop()
        if not keep_folder:
            shutil.rmtree(folder, ignore_errors=True)
