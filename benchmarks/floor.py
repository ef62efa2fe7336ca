"""The floor: a raw watch-and-apply copier, what propagation costs with nothing else in the way.

Why this exists: on a small shared machine the control planes themselves set
how fast a change can cross; a latency target only means something as a ratio
to what the simplest possible copier gets in the same run, on the same control
planes (issue 21). This is that copier, about as short as it can be:

* list the source (label selector, all namespaces), then watch it from the
  list's resourceVersion (relist on 410);
* every event replaces the object's pending state (coalescing per object) and
  queues its key once; 16 threads take keys and server-side apply the latest
  state (or DELETE), with one write in flight per object: an event for a key
  being written waits for that write to end, then its newest state goes;
* no rate limiter, no destination watch, no retry policy beyond "try again",
  no Ray: plain urllib3 over keep-alive connections, auth and TLS read from the
  kubeconfig by the official client's loader.

``FloorCopier`` runs in a thread of the syncer process (``benchmarks.runner``),
like the naive baseline, so it gets the same process and CPU budget as the
engine. With ``trace=True`` it records, per write, when its event arrived,
when the write was sent and when it was answered (``time.monotonic``, which is
system-wide on Linux, so the harness can match them to its own clock).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client, config

FIELD_MANAGER = "bench-floor"
WORKERS = 16


def _pool(kubeconfig: str, maxsize: int) -> tuple[str, urllib3.PoolManager, dict[str, str]]:
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    headers = {"Accept": "application/json"}
    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    if auth:
        prefix = (cfg.api_key_prefix or {}).get("authorization")
        headers["Authorization"] = f"{prefix} {auth}" if prefix else auth
    kw: dict[str, Any] = {"maxsize": maxsize, "block": True, "retries": False}
    if cfg.host.startswith("https"):
        kw["cert_reqs"] = "CERT_REQUIRED" if cfg.verify_ssl else "CERT_NONE"
        if cfg.ssl_ca_cert:
            kw["ca_certs"] = cfg.ssl_ca_cert
        if cfg.cert_file:
            kw["cert_file"], kw["key_file"] = cfg.cert_file, cfg.key_file
    return cfg.host.rstrip("/"), urllib3.PoolManager(**kw), headers


class FloorCopier:
    def __init__(
        self, *, source_kubeconfig: str, dest_kubeconfig: str, selector: str, trace: bool = False
    ) -> None:
        self.src_host, self.src, self.src_headers = _pool(source_kubeconfig, 4)
        self.dst_host, self.dst, self.dst_headers = _pool(dest_kubeconfig, WORKERS)
        self.selector = selector
        self.trace = trace
        self.traces: list[tuple[int, float, float, float]] = []  # seq, event, sent, answered
        self.writes = self.errors = self.events = 0
        self.listed = False
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], tuple[str, dict[str, Any], float]] = {}
        self._busy: set[tuple[str, str]] = set()  # queued or being written
        self._keys: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, name="floor-watch", daemon=True)]
        self._threads += [threading.Thread(target=self._work, name=f"floor-{i}", daemon=True)
                          for i in range(WORKERS)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for _ in range(WORKERS):
            self._keys.put(None)
        for t in self._threads[1:]:
            t.join(10)

    def health(self) -> dict[str, Any]:
        with self._lock:
            idle = not self._pending and not self._busy
        return {"writes": self.writes, "errors": self.errors, "events": self.events,
                "synced": self.listed and idle, "state": "Syncing" if self.listed else "Listing"}

    def take_traces(self) -> list[tuple[int, float, float, float]]:
        with self._lock:
            out, self.traces = self.traces, []
        return out

    # -- source side

    def _offer(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        with self._lock:
            self.events += 1
            self._pending[key] = (kind, obj, time.monotonic())
            if key in self._busy:
                return  # queued already, or written now: the newest state goes next
            self._busy.add(key)
        self._keys.put(key)

    def _get(self, path: str, **params: Any) -> Any:
        url = f"{self.src_host}{path}?{urlencode(params)}"
        return self.src.request("GET", url, headers=self.src_headers, preload_content=False,
                                timeout=urllib3.Timeout(connect=10, read=None))

    def _list(self) -> str:
        cont, rv = "", ""
        while True:
            params = {"labelSelector": self.selector, "limit": 500}
            if cont:
                params["continue"] = cont
            resp = self._get("/api/v1/configmaps", **params)
            doc = json.loads(resp.data)
            resp.release_conn()
            for obj in doc.get("items") or []:
                self._offer("ADDED", obj)
            rv = doc["metadata"].get("resourceVersion", rv)
            cont = doc["metadata"].get("continue") or ""
            if not cont:
                return rv

    def _watch(self) -> None:
        rv = ""
        while not self._stop.is_set():
            try:
                if not rv:
                    rv = self._list()
                    self.listed = True
                resp = self._get("/api/v1/configmaps", watch=1, labelSelector=self.selector,
                                 resourceVersion=rv, allowWatchBookmarks="true",
                                 timeoutSeconds=300)
                for line in _lines(resp):
                    ev = json.loads(line)
                    obj = ev.get("object") or {}
                    if ev.get("type") == "ERROR":
                        rv = "" if obj.get("code") == 410 else rv
                        break
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if ev.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        self._offer(ev["type"], obj)
                    if self._stop.is_set():
                        break
                resp.release_conn()
            except Exception:
                self.errors += 1
                self._stop.wait(0.5)

    # -- destination side

    def _work(self) -> None:
        while True:
            key = self._keys.get()
            if key is None:
                return
            while True:
                with self._lock:
                    item = self._pending.pop(key, None)
                    if item is None:  # nothing newer arrived while writing: the key is free
                        self._busy.discard(key)
                        break
                if not self._write(key, *item):
                    with self._lock:  # failed: try again, unless a newer state arrived meanwhile
                        self._pending.setdefault(key, item)
                    self._stop.wait(0.2)
                if self._stop.is_set():
                    return

    def _write(self, key: tuple[str, str], kind: str, obj: dict[str, Any], seen: float) -> bool:
        ns, name = key
        path = f"{self.dst_host}/api/v1/namespaces/{ns}/configmaps/{name}"
        meta = obj.get("metadata") or {}
        sent = time.monotonic()
        try:
            if kind == "DELETED":
                resp = self.dst.request("DELETE", path, headers=self.dst_headers)
                ok = resp.status in (200, 202, 404)
            else:
                body = {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": name, "namespace": ns,
                                     "labels": meta.get("labels") or {}},
                        "data": obj.get("data") or {}}
                resp = self.dst.request(
                    "PATCH", f"{path}?fieldManager={FIELD_MANAGER}&force=true",
                    body=json.dumps(body).encode(),
                    headers={**self.dst_headers, "Content-Type": "application/apply-patch+yaml"})
                ok = resp.status < 300
        except Exception:
            ok = False
        done = time.monotonic()
        with self._lock:
            if ok:
                self.writes += 1
                if self.trace and kind != "DELETED":
                    seq = (obj.get("data") or {}).get("seq", "-1")
                    self.traces.append((int(seq) if seq.lstrip("-").isdigit() else -1,
                                        seen, sent, done))
            else:
                self.errors += 1
        return ok


def _lines(resp: Any) -> Any:
    buf = b""
    for chunk in resp.stream(65536):
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield line
