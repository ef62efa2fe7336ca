"""The two clusters a benchmark runs against, and process-level measurements.

Why this exists: on a 2-core machine the in-memory API servers must not share a
GIL with the syncer under test, or the servers become the bottleneck and every
ratio is meaningless. Each in-memory server therefore runs in its own spawned
process (``ray_syncer_testkit.ApiServer`` on its own event loop), and is driven
over a pipe for the few things the harness needs from inside it: the count of
mutating requests it served (the truth about destination writes, on the wire)
and clearing its request log between scenarios.

With ``--substrate envtest`` the clusters are two real control planes (etcd +
kube-apiserver, envtest-style, from ``KUBEBUILDER_ASSETS``; no
controller-manager, whose informers would compete for the same 2 cores). The
destination keeps an audit log, which is its request log: write counts are the
truth on the wire there too. With ``--source-kubeconfig/--dest-kubeconfig`` no
server is started: the same scenarios run against those clusters, and write
counts come from the syncer's own health instead.

Process memory is read from ``/proc`` (no psutil dependency).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ray_syncer_testkit.envtest import ControlPlane, ControlPlaneOptions, find_assets

from benchmarks.report import percentiles

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_VERB_METHOD = {"create": "POST", "update": "PUT", "patch": "PATCH", "delete": "DELETE",
                "deletecollection": "DELETE"}


# --------------------------------------------------------------------------- /proc


def proc_memory(pid: int) -> dict[str, float]:
    """RSS, peak RSS (VmHWM), USS and PSS of a process, in MiB (0 when unreadable).

    PSS (proportional set size) counts a page shared by k processes as 1/k in each, so PSS
    summed over processes is what they really take together; RSS sums count shared pages
    (Python, Ray's libraries) once per process.
    """
    out = {"rss_mb": 0.0, "hwm_mb": 0.0, "uss_mb": 0.0, "pss_mb": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                out["hwm_mb"] = int(line.split()[1]) / 1024
        uss_kb = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                uss_kb += int(line.split()[1])
            elif line.startswith("Pss:"):
                out["pss_mb"] = int(line.split()[1]) / 1024
        out["uss_mb"] = uss_kb / 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def proc_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds consumed by a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def children_of() -> dict[int, list[int]]:
    """ppid -> pids of every live process (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    return children


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (a syncer's local Ray: GCS, raylet, agents, workers)."""
    children = children_of()
    out: set[int] = set()
    todo = [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def tree_pss_mb(root: int) -> float:
    """PSS of ``root`` and every process below it, MiB."""
    return sum(proc_memory(p)["pss_mb"] for p in {root, *descendants(root)})


# --------------------------------------------------------------------------- server process


def _server_main(conn: Connection, name: str, kubeconfig_path: str) -> None:
    asyncio.run(_serve(conn, name, kubeconfig_path))


async def _serve(conn: Connection, name: str, kubeconfig_path: str) -> None:
    try:
        from ray_syncer_testkit import ApiServer
    except ImportError as exc:
        conn.send(("error", f"ray_syncer_testkit.ApiServer not importable: {exc}"))
        return
    # A log big enough that counting writes never misses any (the default trims at 100k).
    server = await ApiServer.start(name=name, request_log_limit=5_000_000)
    server.write_kubeconfig(kubeconfig_path)
    conn.send(("ready", server.url))
    loop = asyncio.get_running_loop()
    try:
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd == "stop":
                break
            if cmd == "writes":
                ok: Counter[str] = Counter()
                failed: Counter[str] = Counter()
                reads: Counter[str] = Counter()
                for rec in server.request_log:
                    status = int(rec.status or 0)
                    if rec.method in MUTATING:
                        (ok if status < 400 else failed)[rec.method] += 1
                    else:
                        kind = "watch" if getattr(rec, "watch", False) else rec.method
                        reads[f"{kind} {status}"] += 1
                conn.send({"ok": dict(ok), "failed": dict(failed), "reads": dict(reads)})
            elif cmd == "clear":
                server.clear_log()
                conn.send(True)
            else:
                conn.send(("error", f"unknown command {cmd!r}"))
    finally:
        await server.stop()
        conn.send("stopped")


def _served_s(event: dict[str, Any]) -> float:
    """Received -> response complete, from one audit event's timestamps (microsecond RFC 3339)."""
    def at(key: str) -> float:
        return datetime.fromisoformat(str(event[key]).replace("Z", "+00:00")).timestamp()

    return at("stageTimestamp") - at("requestReceivedTimestamp")


@dataclass
class ServerProcess:
    """One in-memory API server in its own process."""

    name: str
    kubeconfig: Path
    process: mp.process.BaseProcess
    conn: Connection

    @classmethod
    def start(cls, *, name: str, workdir: Path, timeout: float = 60.0) -> ServerProcess:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        path = workdir / f"{name}.kubeconfig"
        proc = ctx.Process(
            target=_server_main, args=(child, name, str(path)), name=f"bench-{name}", daemon=True
        )
        proc.start()
        if not parent.poll(timeout):
            proc.kill()
            raise RuntimeError(f"in-memory API server {name!r} did not start in {timeout}s")
        msg = parent.recv()
        if msg[0] != "ready":
            proc.join(5)
            raise RuntimeError(str(msg[1]))
        return cls(name=name, kubeconfig=path, process=proc, conn=parent)

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def _call(self, cmd: str, timeout: float = 60.0) -> Any:
        self.conn.send(cmd)
        if not self.conn.poll(timeout):
            raise RuntimeError(f"server {self.name} did not answer {cmd!r}")
        return self.conn.recv()

    def writes(self) -> dict[str, Any]:
        return dict(self._call("writes"))

    def clear_log(self) -> None:
        self._call("clear")

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(RuntimeError, OSError, EOFError):
                self._call("stop", timeout=15)
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()


@dataclass
class Clusters:
    """Source and destination: kubeconfig paths, plus the servers when the run started them."""

    source_kubeconfig: Path
    dest_kubeconfig: Path
    source_server: ServerProcess | None = None
    dest_server: ServerProcess | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rsbench-")))
    planes: list[ControlPlane] = field(default_factory=list)  # envtest: [source, destination]
    _audit_mark: int = 0

    @property
    def in_memory(self) -> bool:
        return self.dest_server is not None

    @property
    def substrate(self) -> str:
        if self.in_memory:
            return "memory"
        return "envtest" if self.planes else "kubeconfig"

    @classmethod
    def start_envtest(cls) -> Clusters:
        assets, why = find_assets()
        if assets is None:
            raise SystemExit(f"--substrate envtest: {why}")
        workdir = Path(tempfile.mkdtemp(prefix="rsbench-"))
        planes: list[ControlPlane] = []
        try:
            for name, audit in (("source", False), ("destination", True)):
                opts = ControlPlaneOptions(controller_manager=False, audit=audit,
                                           compaction_interval="5m")
                planes.append(ControlPlane(assets, name=name, folder=workdir / name,
                                           options=opts).start())
        except BaseException:
            for plane in planes:
                plane.stop()
            raise
        return cls(planes[0].kubeconfig_path, planes[1].kubeconfig_path, workdir=workdir,
                   planes=planes)

    @classmethod
    def start(
        cls, *, source_kubeconfig: str | None = None, dest_kubeconfig: str | None = None
    ) -> Clusters:
        workdir = Path(tempfile.mkdtemp(prefix="rsbench-"))
        if source_kubeconfig or dest_kubeconfig:
            if not (source_kubeconfig and dest_kubeconfig):
                raise SystemExit("give both --source-kubeconfig and --dest-kubeconfig, or neither")
            return cls(Path(source_kubeconfig), Path(dest_kubeconfig), workdir=workdir)
        src = ServerProcess.start(name="source", workdir=workdir)
        try:
            dst = ServerProcess.start(name="dest", workdir=workdir)
        except BaseException:
            src.stop()
            raise
        return cls(src.kubeconfig, dst.kubeconfig, src, dst, workdir)

    @property
    def counts_writes(self) -> bool:
        return self.in_memory or bool(self.planes)

    def dest_write_count(self) -> int | None:
        """Successful mutating requests the destination served since the last clear."""
        requests = self.dest_requests()
        return None if requests is None else sum(requests["ok"].values())

    def dest_requests(self) -> dict[str, Any] | None:
        """Every request the destination served since the last clear, by method and status."""
        if self.dest_server is not None:
            return self.dest_server.writes()
        if not self.planes:
            return None
        ok: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        reads: Counter[str] = Counter()
        served_s: list[float] = []
        for event in self.planes[1].audit_events(self._audit_mark):
            if (event.get("user") or {}).get("username") == "system:apiserver":
                continue  # its own identity lease, renewed every 10 s: not a write of ours
            verb = str(event.get("verb", ""))
            status = int((event.get("responseStatus") or {}).get("code") or 0)
            method = _VERB_METHOD.get(verb)
            if method is not None:
                (ok if status < 400 else failed)[method] += 1
                served_s.append(_served_s(event))
            else:
                reads[f"{'watch' if verb == 'watch' else 'GET'} {status}"] += 1
        out: dict[str, Any] = {"ok": dict(ok), "failed": dict(failed), "reads": dict(reads)}
        if served_s:
            # How long the apiserver itself took per write: latency the syncer cannot remove.
            out["write_served_ms"] = percentiles(served_s)
        return out

    def clear_logs(self) -> None:
        for s in (self.source_server, self.dest_server):
            if s is not None:
                s.clear_log()
        if self.planes:
            self._audit_mark = self.planes[1].audit_offset()

    def server_pids(self) -> dict[str, int]:
        """The processes serving each cluster (for CPU accounting), by role."""
        out = {f"{s.name}_server": s.pid for s in (self.source_server, self.dest_server)
               if s is not None}
        for plane in self.planes:
            for proc_name, pid in plane.named_pids().items():
                out[f"{plane.name}_{proc_name}"] = pid
        return out

    def stop(self) -> None:
        for s in (self.source_server, self.dest_server):
            if s is not None:
                s.stop()
        for plane in self.planes:
            plane.stop()
