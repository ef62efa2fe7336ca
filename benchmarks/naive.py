"""The naive baseline: the syncer a user writes in an afternoon.

One watch on the source; for every event, sequentially, a GET on the
destination and then a create or a replace (or a delete). No coalescing, no
batching, no concurrency; the official synchronous ``kubernetes`` client. Every
ratio "to naive" in the results compares the engine against this.

It runs in a thread of the syncer process (``benchmarks.runner``), so it gets
the same process and CPU budget as the engine.
"""

from __future__ import annotations

import threading
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


class NaiveSyncer:
    def __init__(self, *, source_kubeconfig: str, dest_kubeconfig: str, selector: str) -> None:
        self.src = client.CoreV1Api(config.new_client_from_config(config_file=source_kubeconfig))
        self.dst = client.CoreV1Api(config.new_client_from_config(config_file=dest_kubeconfig))
        self.selector = selector
        self.writes = 0
        self.errors = 0
        self.events = 0
        self.listed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="naive-syncer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def health(self) -> dict[str, Any]:
        return {
            "writes": self.writes,
            "errors": self.errors,
            "events": self.events,
            "synced": self.listed,
            "state": "Syncing" if self.listed else "Listing",
        }

    def _copy(self, cm: Any) -> None:
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name=cm.metadata.name, namespace=cm.metadata.namespace, labels=cm.metadata.labels
            ),
            data=cm.data,
        )
        ns, name = cm.metadata.namespace, cm.metadata.name
        try:
            existing = self.dst.read_namespaced_config_map(name, ns)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.dst.create_namespaced_config_map(ns, body)
        else:
            body.metadata.resource_version = existing.metadata.resource_version  # type: ignore[union-attr]
            self.dst.replace_namespaced_config_map(name, ns, body)
        self.writes += 1

    def _handle(self, kind: str, cm: Any) -> None:
        self.events += 1
        try:
            if kind == "DELETED":
                try:
                    self.dst.delete_namespaced_config_map(cm.metadata.name, cm.metadata.namespace)
                    self.writes += 1
                except ApiException as exc:
                    if exc.status != 404:
                        raise
            else:
                self._copy(cm)
        except ApiException:
            self.errors += 1

    def _run(self) -> None:
        rv = ""
        while not self._stop.is_set():
            try:
                if not rv:
                    lst = self.src.list_config_map_for_all_namespaces(label_selector=self.selector)
                    for cm in lst.items:
                        if self._stop.is_set():
                            return
                        self._handle("ADDED", cm)
                    rv = lst.metadata.resource_version or ""  # type: ignore[union-attr]
                    self.listed = True
                w = watch.Watch()
                for ev in w.stream(
                    self.src.list_config_map_for_all_namespaces,
                    label_selector=self.selector,
                    resource_version=rv,
                    timeout_seconds=2,
                ):
                    obj = ev["object"]
                    rv = obj.metadata.resource_version or rv
                    self._handle(ev["type"], obj)
                    if self._stop.is_set():
                        w.stop()
                        return
            except ApiException as exc:
                if exc.status == 410:
                    rv = ""  # relist, as the afternoon version would after reading the docs
                else:
                    self._stop.wait(0.5)
            except Exception:  # the afternoon version retries everything
                self.errors += 1
                self._stop.wait(0.5)
