"""Kubeconfig loading: refusals for Secret kubeconfigs, good configs, and no leaked secrets."""

from __future__ import annotations

import base64
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ray_syncer.kube.config import (
    ClusterConfig,
    KubeconfigError,
    load_default,
    load_in_cluster,
    load_kubeconfig_file,
    load_kubeconfig_text,
)
from tests.kube.pki import pki

TOKEN = "s3cr3t-token-ABCDEFGHIJKLMNOP"
KEY_PEM = pki()["client_key"]
CERT_PEM = pki()["client_cert"]
CA_PEM = pki()["ca"]
# The key's base64 body (as it appears inside the PEM) and the kubeconfig's base64 of the PEM.
SECRET_MARKERS = (TOKEN, KEY_PEM.splitlines()[1].decode(), base64.b64encode(KEY_PEM).decode()[:40])


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def kubeconfig(
    *,
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    current: str | None = "ctx",
    extra_contexts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "dr", "cluster": cluster or {"server": "https://dr.example:6443"}}],
        "users": [{"name": "syncer", "user": user if user is not None else {"token": TOKEN}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "dr", "user": "syncer"}}]
        + (extra_contexts or []),
    }
    if current is not None:
        doc["current-context"] = current
    return doc


def text(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc)


def assert_no_secret(*texts: str) -> None:
    for t in texts:
        for marker in SECRET_MARKERS:
            assert marker not in t, f"secret material leaked into: {t!r}"


def refused(doc_text: str, **kw: Any) -> KubeconfigError:
    with pytest.raises(KubeconfigError) as info:
        load_kubeconfig_text(doc_text, **kw)
    exc = info.value
    assert_no_secret(str(exc), repr(exc), exc.message)
    return exc


# ---------------------------------------------------------------- good configs


def test_token_config_loads_server_token_and_name() -> None:
    cfg = load_kubeconfig_text(text(kubeconfig()))
    assert cfg.server == "https://dr.example:6443"
    assert cfg.token == TOKEN
    assert cfg.name == "ctx"
    assert cfg.ca_data is None and not cfg.insecure_skip_tls_verify


def test_ca_and_client_cert_data_are_held_as_bytes() -> None:
    doc = kubeconfig(
        cluster={"server": "https://dr.example:6443/", "certificate-authority-data": b64(CA_PEM)},
        user={"client-certificate-data": b64(CERT_PEM), "client-key-data": b64(KEY_PEM)},
    )
    cfg = load_kubeconfig_text(text(doc))
    assert cfg.server == "https://dr.example:6443"  # trailing slash trimmed
    assert cfg.ca_data == CA_PEM
    assert cfg.client_cert_data == CERT_PEM
    assert cfg.client_key_data == KEY_PEM
    assert cfg.token is None
    assert_no_secret(repr(cfg), str(cfg))


@pytest.mark.parametrize("value", [True, "true"])
def test_insecure_skip_tls_verify(value: object) -> None:
    doc = kubeconfig(cluster={"server": "https://dr:6443", "insecure-skip-tls-verify": value})
    assert load_kubeconfig_text(text(doc)).insecure_skip_tls_verify is True


def test_quoted_false_is_not_insecure() -> None:
    doc = kubeconfig(cluster={"server": "https://dr:6443", "insecure-skip-tls-verify": "false"})
    assert load_kubeconfig_text(text(doc)).insecure_skip_tls_verify is False


def test_explicit_context_wins_over_current_context() -> None:
    doc = kubeconfig(extra_contexts=[{"name": "other", "context": {"cluster": "dr"}}])
    cfg = load_kubeconfig_text(text(doc), context="other")
    assert cfg.name == "other" and cfg.token is None


def test_tls_server_name_is_kept() -> None:
    doc = kubeconfig(
        cluster={"server": "https://10.0.0.1:6443", "tls-server-name": "kube.internal"}
    )
    assert load_kubeconfig_text(text(doc)).tls_server_name == "kube.internal"


def test_repr_and_pickle_keep_secrets_out_of_text_but_in_data() -> None:
    cfg = load_kubeconfig_text(
        text(
            kubeconfig(
                user={
                    "token": TOKEN,
                    "client-certificate-data": b64(CERT_PEM),
                    "client-key-data": b64(KEY_PEM),
                }
            )
        )
    )
    assert_no_secret(repr(cfg), str(cfg), f"{cfg}")
    assert "token=<set>" in repr(cfg)
    clone = pickle.loads(pickle.dumps(cfg))
    assert clone == cfg and clone.token == TOKEN


# ---------------------------------------------------------------- refusals


def test_exec_plugin_refused() -> None:
    doc = kubeconfig(
        user={"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "evil"}}
    )
    assert refused(text(doc)).reason == "ExecPluginRefused"


def test_auth_provider_refused() -> None:
    doc = kubeconfig(user={"auth-provider": {"name": "oidc", "config": {"id-token": TOKEN}}})
    assert refused(text(doc)).reason == "AuthProviderRefused"


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("cluster", "certificate-authority"),
        ("user", "client-certificate"),
        ("user", "client-key"),
        ("user", "tokenFile"),
    ],
)
def test_file_references_refused(section: str, key: str) -> None:
    cluster: dict[str, Any] = {"server": "https://dr:6443"}
    user: dict[str, Any] = {}
    (cluster if section == "cluster" else user)[key] = "/etc/shadow"
    exc = refused(text(kubeconfig(cluster=cluster, user=user)))
    assert exc.reason == "FileReferenceRefused"
    assert f"{section}.{key}" in exc.message


def test_refusal_checks_the_selected_context_only() -> None:
    # Another user with an exec plugin is irrelevant when the context does not use it.
    doc = kubeconfig()
    doc["users"].append({"name": "evil", "user": {"exec": {"command": "rm"}}})
    assert load_kubeconfig_text(text(doc)).token == TOKEN


def test_allow_files_reads_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    doc = kubeconfig(user={"tokenFile": str(token_file)})
    cfg = load_kubeconfig_text(text(doc), allow_files=True)
    assert cfg.token == TOKEN
    assert cfg.token_file == str(token_file)


def test_allow_exec_runs_the_plugin_through_the_official_loader() -> None:
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": TOKEN},
    }
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": ["-c", f"print({json.dumps(json.dumps(credential))})"],
        }
    }
    doc = text(kubeconfig(user=user))
    assert refused(doc).reason == "ExecPluginRefused"
    assert load_kubeconfig_text(doc, allow_exec=True).token == TOKEN


def test_basic_auth_is_reported_unsupported() -> None:
    exc = refused(text(kubeconfig(user={"username": "admin", "password": TOKEN})))
    assert exc.reason == "UnsupportedAuth"


# ---------------------------------------------------------------- invalid documents


@pytest.mark.parametrize(
    ("doc_text", "reason"),
    [
        (
            f"clusters: [ {{token: {TOKEN}\n  - : :",
            "KubeconfigInvalid",
        ),  # broken YAML holding a token
        ("- just\n- a list\n", "KubeconfigInvalid"),
        ("", "KubeconfigInvalid"),
        ("apiVersion: v1\nkind: Config\n", "KubeconfigInvalid"),  # no clusters
    ],
)
def test_invalid_documents(doc_text: str, reason: str) -> None:
    assert refused(doc_text).reason == reason


def test_broken_yaml_reports_position_not_content() -> None:
    exc = refused(f"users:\n- name: u\n  user: {{token: {TOKEN}\n")
    assert "line" in exc.message


def test_no_current_context() -> None:
    assert refused(text(kubeconfig(current=None))).reason == "KubeconfigNoContext"


def test_unknown_context() -> None:
    exc = refused(text(kubeconfig()), context="nope")
    assert exc.reason == "KubeconfigNoContext" and "nope" in exc.message


def test_no_server() -> None:
    assert refused(text(kubeconfig(cluster={"insecure-skip-tls-verify": True}))).reason == (
        "KubeconfigNoServer"
    )


@pytest.mark.parametrize(
    "server",
    [f"https://dr.example:6443/?token={TOKEN}", f"https://dr.example:6443/k8s#{TOKEN}"],
)
def test_server_url_with_query_or_fragment_is_refused_without_echo(server: str) -> None:
    exc = refused(text(kubeconfig(cluster={"server": server})))
    assert exc.reason == "KubeconfigInvalid"
    assert "query or fragment" in exc.message
    assert_no_secret(str(exc), repr(exc), exc.message)


def test_server_url_with_a_path_prefix_is_accepted() -> None:
    # Proxies (e.g. Rancher) serve clusters under a path prefix: that is a valid server URL.
    cfg = load_kubeconfig_text(text(kubeconfig(cluster={"server": "https://rancher.example/k8s/clusters/c-1"})))
    assert cfg.server.startswith("https://rancher.example/k8s/clusters/c-1")


def test_server_not_a_url() -> None:
    assert refused(text(kubeconfig(cluster={"server": "dr.example:6443"}))).reason == (
        "KubeconfigNoServer"
    )


def test_unusable_tls_material_is_refused_at_load_time() -> None:
    doc = kubeconfig(
        cluster={"server": "https://dr:6443", "certificate-authority-data": b64(b"junk")}
    )
    exc = refused(text(doc))
    assert exc.reason == "KubeconfigInvalid" and "certificate-authority" in exc.message
    bad_key = (
        b"-----BEGIN PRIVATE KEY-----\n"
        + base64.b64encode(TOKEN.encode())
        + b"\n-----END PRIVATE KEY-----\n"
    )
    doc = kubeconfig(
        user={"client-certificate-data": b64(CERT_PEM), "client-key-data": b64(bad_key)}
    )
    assert refused(text(doc)).reason == "KubeconfigInvalid"
    doc = kubeconfig(user={"client-key-data": b64(KEY_PEM)})  # a key without its certificate
    assert refused(text(doc)).reason == "KubeconfigInvalid"


def test_bad_base64_is_invalid_and_quiet() -> None:
    doc = kubeconfig(user={"token": TOKEN, "client-key-data": "%%%" + TOKEN})
    assert refused(text(doc)).reason == "KubeconfigInvalid"


# ---------------------------------------------------------------- trusted loading


def test_file_kubeconfig_resolves_relative_files_against_its_directory(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(CA_PEM)
    (tmp_path / "token").write_text(TOKEN)
    doc = kubeconfig(
        cluster={"server": "https://dr:6443", "certificate-authority": "ca.crt"},
        user={"tokenFile": "token"},
    )
    path = tmp_path / "config"
    path.write_text(text(doc))
    cfg = load_default(kubeconfig=str(path))
    assert cfg.ca_data == CA_PEM
    assert cfg.token == TOKEN


def test_kubeconfig_env_list_is_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = kubeconfig(current="ctx")
    second = kubeconfig(cluster={"server": "https://second:6443"}, current="ctx2")
    second["clusters"][0]["name"] = "c2"
    second["contexts"] = [{"name": "ctx2", "context": {"cluster": "c2", "user": "syncer"}}]
    (tmp_path / "a").write_text(text(first))
    (tmp_path / "b").write_text(text(second))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert load_default().server == "https://dr.example:6443"
    assert load_default(context="ctx2").server == "https://second:6443"


def test_missing_kubeconfig_file(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError) as info:
        load_kubeconfig_file(str(tmp_path / "nope"))
    assert info.value.reason == "KubeconfigInvalid"


def test_in_cluster_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "ca.crt").write_bytes(CA_PEM)
    cfg = load_in_cluster(
        token_path=str(tmp_path / "token"),
        ca_path=str(tmp_path / "ca.crt"),
        environ={"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"},
    )
    assert cfg == ClusterConfig(
        server="https://[fd00::1]:443",
        token=TOKEN,
        ca_data=CA_PEM,
        name="in-cluster",
        token_file=str(tmp_path / "token"),
    )


def test_in_cluster_unavailable_without_env(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError) as info:
        load_in_cluster(token_path=str(tmp_path / "token"), environ={})
    assert info.value.reason == "InClusterUnavailable"
