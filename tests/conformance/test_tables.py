"""Receiving resources as Tables (API concepts), what ``kubectl get`` asks for."""

from __future__ import annotations

import contextlib
import secrets
import time

import orjson
import pytest
from kubernetes.client import ApiException

from tests import cleanup

from .conftest import Cluster

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _get_table(cluster: Cluster, path: str) -> dict:
    pool = cluster.api_client.rest_client.pool_manager
    headers = cluster._headers(None, None)
    headers["Accept"] = TABLE
    r = pool.request("GET", cluster.configuration.host + path, headers=headers, timeout=10, retries=False)
    assert r.status == 200, r.data
    return orjson.loads(r.data)


def test_list_as_table_has_name_column_and_one_row_per_object(cluster: Cluster, namespace: str) -> None:
    for n in ("t1", "t2"):
        cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": n}, "data": {"a": "1"}})
    table = _get_table(cluster, f"/api/v1/namespaces/{namespace}/configmaps?labelSelector=")
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["columnDefinitions"][0]["name"] == "Name"
    names = [row["cells"][0] for row in table["rows"]]
    assert {"t1", "t2"} <= set(names)
    row = next(r for r in table["rows"] if r["cells"][0] == "t1")
    assert row["object"]["metadata"]["name"] == "t1"
    assert len(row["cells"]) == len(table["columnDefinitions"])


def test_custom_resource_table_uses_additional_printer_columns(cluster: Cluster, namespace: str) -> None:
    group = f"tbl{secrets.token_hex(3)}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": cleanup.labelled({"name": f"things.{group}"}),
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "subresources": {"status": {}},
                                  "additionalPrinterColumns": [
                                      {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                                      {"name": "Ready", "type": "string",
                                       "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}],
                                  "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                      "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                                      "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                  }}}}]}}
    try:
        cluster.apiext.create_custom_resource_definition(crd)
    except ApiException as exc:
        if exc.status == 403:
            pytest.skip("creating CRDs needs cluster-admin")
        raise
    try:
        deadline = time.monotonic() + 20
        while cluster.raw("GET", f"/apis/{group}/v1").status != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        cluster.custom.create_namespaced_custom_object(group, "v1", namespace, "things", {
            "apiVersion": f"{group}/v1", "kind": "Thing", "metadata": {"name": "x"}, "spec": {"size": 7}})
        cluster.custom.patch_namespaced_custom_object_status(group, "v1", namespace, "things", "x", {
            "status": {"conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]}})
        table = _get_table(cluster, f"/apis/{group}/v1/namespaces/{namespace}/things")
        columns = [c["name"] for c in table["columnDefinitions"]]
        assert columns[:3] == ["Name", "Size", "Ready"]
        assert table["rows"][0]["cells"][:3] == ["x", 7, "True"]
    finally:
        with contextlib.suppress(ApiException):
            cluster.apiext.delete_custom_resource_definition(f"things.{group}")
