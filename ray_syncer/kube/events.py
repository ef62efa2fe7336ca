"""Kubernetes Events about an object: the one writer, for the operator and the DR tools.

Why it exists: ``kubectl describe krmsyncer`` is where a person looks first, and
the operator (conflicts, takeovers, an unreachable destination) and ``ray-syncer
failover`` (promoted, demoted) both tell them there. An Event is a courtesy, not
a record: failing to post one never fails the caller, it only returns False.
The message is the caller's, and must hold no secret data.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from ray_syncer.kube.client import KubeClient
from ray_syncer.kube.errors import ApiError, TransportError

MAX_MESSAGE = 1024


def event_body(
    involved: Mapping[str, Any], *, reason: str, message: str, etype: str, component: str,
    instance: str, now: float,
) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` (an object with apiVersion, kind and metadata)."""
    meta = involved.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    ref = {
        "apiVersion": involved.get("apiVersion"),
        "kind": involved.get("kind"),
        "name": meta.get("name"),
        "namespace": ns,
        "uid": meta.get("uid"),
    }
    if meta.get("resourceVersion"):
        ref["resourceVersion"] = meta["resourceVersion"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name')}.{uuid.uuid4().hex[:16]}", "namespace": ns},
        "involvedObject": ref,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "type": etype,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def post_event(
    client: KubeClient, involved: Mapping[str, Any], *, reason: str, message: str,
    etype: str = "Normal", component: str, instance: str | None = None,
    now: float | None = None,
) -> bool:
    """Post an Event about ``involved``; False (never an exception) when it was not recorded."""
    body = event_body(involved, reason=reason, message=message, etype=etype,
                      component=component, instance=instance or component,
                      now=time.time() if now is None else now)
    ns = body["metadata"]["namespace"]
    try:
        await client.request("POST", f"/api/v1/namespaces/{ns}/events", body=body)
    except (ApiError, TransportError):
        return False
    return True
