"""The cluster the conformance suite runs against.

Every test runs on both substrates (tests/substrate.py): the in-memory server
(ray_syncer_testkit) in a background thread, and the source of the real pair
(envtest control planes from ``KUBEBUILDER_ASSETS``, or a cluster from
``KRMSYNCER_E2E_SOURCE_KUBECONFIG``). Tests that need the in-memory server's
controls (fault injection, extra users, TLS variants) take the ``fake``
fixture, which skips on a real cluster with the reason.

Each test gets its own namespace, so tests do not see each other's objects.
Tests talk through the official ``kubernetes`` client, and through
:meth:`Cluster.raw` where the client hides what the API documents (status
codes, headers, the wire format of watch streams).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import urllib3
import yaml
from kubernetes import client, config, dynamic
from ray_syncer_testkit import ThreadedApiServer, start_in_thread

from tests import cleanup


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Cluster:
    def __init__(self, configuration: client.Configuration, fake: ThreadedApiServer | None) -> None:
        self.configuration = configuration
        self.fake = fake
        self.api_client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.apiext = client.ApiextensionsV1Api(self.api_client)
        self.events = client.EventsV1Api(self.api_client)
        self._dynamic: dynamic.DynamicClient | None = None

    @property
    def dynamic(self) -> dynamic.DynamicClient:
        # Built lazily and rebuilt by tests that add CRDs (discovery is cached).
        if self._dynamic is None:
            self._dynamic = dynamic.DynamicClient(self.api_client)
        return self._dynamic

    def fresh_dynamic(self) -> dynamic.DynamicClient:
        self._dynamic = None
        d = self.dynamic
        d.resources.invalidate_cache()
        return d

    def _headers(self, token: str | None, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if token is not None:
            if token:
                headers["Authorization"] = f"Bearer {token}"
        else:
            # Whatever the client would send (token, refreshed exec token, ...).
            for setting in self.configuration.auth_settings().values():
                if setting.get("in") == "header" and setting.get("value"):
                    headers[str(setting["key"]).title()] = str(setting["value"])
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def raw(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> Response:
        """One HTTP request with the cluster's credentials (``token=""`` sends none)."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            content_type = content_type or "application/json"
        pool = self.api_client.rest_client.pool_manager
        r = pool.request(method, self.configuration.host + path, body=data,
                         headers=self._headers(token, content_type), timeout=timeout, retries=False)
        return Response(r.status, dict(r.headers), r.data)

    def stream(self, path: str, *, timeout: float = 10.0) -> Any:
        """An open streaming response (for watch); iterate ``.stream()`` or read lines.

        It gets a connection pool of its own: a half-read watch must never go back into the
        client's pool, where the next request would read the rest of the stream.
        """
        base = self.api_client.rest_client.pool_manager
        pool = urllib3.PoolManager(num_pools=1, **base.connection_pool_kw)
        return pool.request("GET", self.configuration.host + path, headers=self._headers(None, None),
                            preload_content=False, timeout=timeout, retries=False)


@pytest.fixture(scope="session")
def cluster(substrate: str, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if substrate == "real":
        pair = request.getfixturevalue("real_pair")
        cfg = client.Configuration()
        config.load_kube_config_from_dict(yaml.safe_load(pair.source.kubeconfig), client_configuration=cfg)
        yield Cluster(cfg, None)
        return
    server = start_in_thread(name="conformance", bookmark_interval=0.2)
    try:
        yield Cluster(server.configuration(), server)
    finally:
        server.stop()


@pytest.fixture
def fake(cluster: Cluster) -> Iterator[ThreadedApiServer]:
    """The in-memory server itself; skips on a real cluster (its controls do not exist there)."""
    if cluster.fake is None:
        pytest.skip("needs the in-memory server's own controls (faults, users, TLS variant, bookmark interval); "
                    "a real cluster has none")
    yield cluster.fake
    cluster.fake.faults.reset()


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = cleanup.note(f"conf-{secrets.token_hex(4)}")
    cluster.core.create_namespace({"metadata": cleanup.labelled({"name": name})})
    yield name
    if cluster.fake is not None:
        cluster.fake.faults.reset()  # a fault test must not fail its own cleanup
    with contextlib.suppress(client.ApiException):
        cluster.core.delete_namespace(name)


def unique(prefix: str) -> str:
    """A fresh name, noted for the cleanup after the test on a real cluster (tests/cleanup.py)."""
    return cleanup.note(f"{prefix}-{secrets.token_hex(3)}")
