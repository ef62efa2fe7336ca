"""Round trips through an API server: the CRD installs, examples are stored and parse back,
and the status the operator computes fits the CRD's status schema without pruning.

The in-memory API server (ray_syncer_testkit) prunes and defaults by the CRD's
structural schema like kube-apiserver does, so a field the CRD lacks would
vanish here exactly as it would on a real cluster.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
import yaml

from ray_syncer import API_GROUP, API_VERSION, PLURAL
from ray_syncer.api.crd import load_crd, openapi_schema
from ray_syncer.api.parse import parse_krmsyncer
from ray_syncer.api.status import KRMSyncerStatus
from ray_syncer.engine.spec import ShardHealth, ShardState
from ray_syncer.operator.status import SyncerFacts, compute_status
from tests.api.cases import EXAMPLES
from tests.api.crd_schema import CrdValidator


def _operator_status() -> dict[str, Any]:
    now = time.time()
    shard = "default/configmap-sync/core/ConfigMap/default"
    facts = SyncerFacts(
        generation=1,
        expected_shards=[shard, "default/configmap-sync/core/Secret/default"],
        expansions=["rules[1] *.example.com/*/* -> 2 kind(s): A.x.example.com, B.y.example.com"],
        recovery={shard: 1.5, "default/configmap-sync/core/Secret/default": 42.0},
        rpo_target_s=30.0,
    )
    healths = [
        ShardHealth(
            shard_id=shard, state=ShardState.SYNCING, objects=3, last_sync_time=now, synced=True
        ),
        ShardHealth(
            shard_id="default/configmap-sync/core/Secret/default",
            state=ShardState.DEGRADED,
            objects=1,
            errors=1,
            conflicts=1,
            last_error="403 Forbidden writing secrets in default",
            lag_seconds=2.25,
        ),
    ]
    return compute_status(facts, healths, now=now)


def test_operator_status_fits_the_crd_status_schema() -> None:
    status = _operator_status()
    obj = {**yaml.safe_load((EXAMPLES[0]).read_text()), "status": status}
    stored, errors = CrdValidator().admit(obj)
    assert errors == [], "the API server would reject or prune this status"
    assert stored is not None and stored["status"] == status
    parsed = KRMSyncerStatus.model_validate(status)
    wire = parsed.to_api()
    assert {k: v for k, v in wire.items() if k in status} == status  # the model keeps every field
    assert KRMSyncerStatus.model_validate(wire) == parsed


@pytest.fixture(scope="module")
def api() -> Iterator[kubernetes.client.ApiClient]:
    from ray_syncer_testkit import start_in_thread

    server = start_in_thread(name="api-roundtrip")
    try:
        with kubernetes.client.ApiClient(server.configuration()) as client:
            kubernetes.client.ApiextensionsV1Api(client).create_custom_resource_definition(
                load_crd()
            )
            yield client
    finally:
        server.stop()


def _docs() -> list[dict[str, Any]]:
    out = []
    for path in EXAMPLES:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "KRMSyncer":
                out.append(doc)
    return out


def test_examples_store_and_parse_back_with_the_same_defaults(
    api: kubernetes.client.ApiClient,
) -> None:
    objects = kubernetes.client.CustomObjectsApi(api)
    for i, doc in enumerate(_docs()):
        body = copy.deepcopy(doc)
        body["metadata"] = {"name": f"{doc['metadata']['name']}-{i}", "namespace": "default"}
        created = objects.create_namespaced_custom_object(
            API_GROUP, API_VERSION, "default", PLURAL, body
        )
        fetched = objects.get_namespaced_custom_object(
            API_GROUP, API_VERSION, "default", PLURAL, created["metadata"]["name"]
        )
        assert fetched["metadata"].get("uid")
        syncer = parse_krmsyncer(fetched)
        # What the server stored (pruned + defaulted) is exactly what the models produce.
        assert syncer.spec.to_api() == fetched["spec"], doc["metadata"]["name"]
        assert syncer.spec == parse_krmsyncer(body).spec


def test_status_written_by_the_operator_survives_the_status_subresource(
    api: kubernetes.client.ApiClient,
) -> None:
    objects = kubernetes.client.CustomObjectsApi(api)
    body = copy.deepcopy(_docs()[0])
    body["metadata"] = {"name": "status-roundtrip", "namespace": "default"}
    objects.create_namespaced_custom_object(API_GROUP, API_VERSION, "default", PLURAL, body)
    status = _operator_status()
    objects.patch_namespaced_custom_object_status(
        API_GROUP, API_VERSION, "default", PLURAL, "status-roundtrip", {"status": status}
    )
    fetched = objects.get_namespaced_custom_object(
        API_GROUP, API_VERSION, "default", PLURAL, "status-roundtrip"
    )
    assert fetched["status"] == status
    syncer = parse_krmsyncer(fetched)
    assert syncer.status is not None
    assert {c.type for c in syncer.status.conditions} == {
        "Ready",
        "Suspended",
        "DestinationReachable",
        "Synced",
        "Degraded",
        "RecoveryPointObjective",
    }
    assert syncer.status.recovery_point_seconds == 42.0
    assert syncer.status.rpo_target_seconds == 30.0


def test_schema_of_the_server_is_the_packaged_one(api: kubernetes.client.ApiClient) -> None:
    crd = kubernetes.client.ApiextensionsV1Api(api).read_custom_resource_definition(
        f"{PLURAL}.{API_GROUP}"
    )
    served = api.sanitize_for_serialization(crd)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert (
        served["properties"]["spec"]["required"]
        == openapi_schema()["properties"]["spec"]["required"]
    )
