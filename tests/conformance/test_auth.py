"""Authentication and authorization (bearer tokens, TLS with the kubeconfig's CA)."""

from __future__ import annotations

import ssl
import urllib.request
from typing import Any

import orjson
import pytest
from kubernetes import client
from ray_syncer_testkit import start_in_thread

from .conftest import Cluster


def test_invalid_bearer_token_is_unauthorized_401(cluster: Cluster) -> None:
    r = cluster.raw("GET", "/api/v1/namespaces", token="not-a-valid-token")
    assert r.status == 401
    assert r.json()["kind"] == "Status" and r.json()["reason"] == "Unauthorized"


def test_request_without_credentials_is_rejected(cluster: Cluster) -> None:
    # 401 with anonymous auth disabled, 403 for system:anonymous when it is enabled.
    assert cluster.raw("GET", "/api/v1/namespaces/default/secrets", token="").status in (401, 403)


def test_user_denied_by_policy_gets_forbidden_403(cluster: Cluster, fake: Any, namespace: str) -> None:
    fake.add_user("reader-token", user="reader",
                  allow=lambda verb, group, resource, ns: verb in ("get", "list", "watch"))
    assert cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps", token="reader-token").status == 200
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", token="reader-token",
                    body={"metadata": {"name": "x"}})
    assert r.status == 403
    body = r.json()
    assert body["reason"] == "Forbidden" and 'User "reader"' in body["message"]


def test_authorizer_sees_verb_group_resource_and_namespace(cluster: Cluster, fake: Any, namespace: str) -> None:
    seen: list[tuple] = []
    fake.add_user("spy-token", user="spy", allow=lambda *a: seen.append(a) or True)
    cluster.raw("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments", token="spy-token")
    cluster.raw("DELETE", "/api/v1/namespaces/nothing-here", token="spy-token")
    assert seen == [("list", "apps", "deployments", namespace), ("delete", "", "namespaces", None)]


def test_request_log_records_which_user_made_each_request(cluster: Cluster, fake: Any, namespace: str) -> None:
    fake.add_user("other-token", user="other")
    fake.clear_log()
    cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps", token="other-token")
    cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps")
    log = [(r.method, r.path, r.user, r.status) for r in fake.request_log]
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert log == [("GET", path, "other", 200), ("GET", path, "admin", 200)]


def test_kubeconfig_with_a_user_token_authenticates_as_that_user(fake: Any, tmp_path: Any) -> None:
    from kubernetes import config

    fake.add_user("kc-token", user="kc-user")
    path = fake.write_kubeconfig(tmp_path / "kc.yaml", token="kc-token", context="mine")
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg, context="mine")
    fake.clear_log()
    client.CoreV1Api(client.ApiClient(cfg)).list_namespace()
    assert [r.user for r in fake.request_log] == ["kc-user"]


@pytest.fixture(scope="module")
def tls_server() -> Any:
    server = start_in_thread(name="tls", tls=True)
    yield server
    server.stop()


def test_tls_server_is_verified_with_the_kubeconfig_ca(tls_server: Any, fake: Any, tmp_path: Any) -> None:
    from kubernetes import config

    assert tls_server.url.startswith("https://")
    path = tls_server.write_kubeconfig(tmp_path / "tls.yaml")
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    names = [n.metadata.name for n in client.CoreV1Api(client.ApiClient(cfg)).list_namespace().items]
    assert "default" in names


def test_tls_server_is_refused_without_its_ca(tls_server: Any, fake: Any) -> None:
    req = urllib.request.Request(tls_server.url + "/version")
    with pytest.raises(urllib.error.URLError) as exc:
        urllib.request.urlopen(req, context=ssl.create_default_context(), timeout=5)
    assert isinstance(exc.value.reason, ssl.SSLCertVerificationError)
    ctx = ssl.create_default_context(cadata=tls_server.ca_pem.decode())
    with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
        assert orjson.loads(resp.read())["major"]
