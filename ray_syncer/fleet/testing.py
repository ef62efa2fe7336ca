"""Ray helpers for tests and benchmarks: a multi-node Ray on one machine, and named-actor tools.

Nothing on the production path imports this module (a layout test checks it).

* :class:`LocalCluster` is several Ray nodes on this machine
  (``ray.cluster_utils.Cluster``): losing one is losing a node.
* ``named_actors``, ``actor_pid``, ``actor_node``, ``kill_actor``, ``kill_all``
  find, locate and kill the operator's named actors (chaos and failover tests).
* ``session_log_dir`` is where the connected Ray session writes its logs (the
  secret-leak tests scan it).

Ray's private API, used here only (test support, never the product):
``ray._private.utils.write_ray_address`` is redirected while a LocalCluster
starts, so that its address is recorded in its own temp dir and no other
``ray.init()`` on the machine joins it; the session's log dir comes from
``ray._private.worker.global_worker`` (Ray has no public call for it).
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import ray

from ray_syncer.fleet.local import RAY_NAMESPACE


def named_actors() -> list[str]:
    return sorted(
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a.get("namespace") == RAY_NAMESPACE
    )


def actor_pid(name: str) -> int:
    handle = ray.get_actor(name, namespace=RAY_NAMESPACE)
    pid: int = ray.get(handle.pid.remote(), timeout=60)
    return pid


def actor_node(name: str, timeout: float = 60) -> str:
    """The id of the Ray node a named actor (supervisor or host) runs on."""
    handle = ray.get_actor(name, namespace=RAY_NAMESPACE)
    node: str = ray.get(handle.node_id.remote(), timeout=timeout)
    return node


def kill_actor(name: str, *, restart: bool) -> None:
    """Kill a named actor (chaos tests): with ``restart`` Ray brings it back under the same name."""
    ray.kill(ray.get_actor(name, namespace=RAY_NAMESPACE), no_restart=not restart)


def kill_all() -> None:
    """Remove every actor in the namespace (test teardown)."""
    for name in named_actors():
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=RAY_NAMESPACE), no_restart=True)


def session_log_dir() -> str:
    """The log directory of the connected Ray session (tests scan it for secrets)."""
    from ray._private.worker import global_worker

    node = global_worker.node
    if node is None:
        raise RuntimeError("not connected to Ray")
    return str(node.get_logs_dir_path())


# -- a multi-node Ray on one machine (tests and benchmarks) --


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """A Ray cluster of several nodes on this machine (``ray.cluster_utils.Cluster``).

    Each node is its own raylet (with its agents), so removing one is losing a
    node: its actors die and Ray restarts them elsewhere. The head has
    ``head_cpus`` CPUs (0, like the deployment's head: shard hosts go to
    workers). Private: its own ``temp_dir`` and free ports, and the address is
    recorded there only (Ray would record it in its default temp dir, where any
    other ``ray.init()`` on this machine would find it and join).
    """

    def __init__(
        self,
        temp_dir: str,
        *,
        head_cpus: float = 0,
        dashboard: bool = False,
        object_store_mb: int = 80,
        system_config: dict[str, Any] | None = None,
    ) -> None:
        import ray._private.utils as ray_utils
        from ray.cluster_utils import Cluster

        self.temp_dir = temp_dir
        self._store = object_store_mb * 1024 * 1024
        self.dashboard_port = _free_port() if dashboard else None
        real = ray_utils.write_ray_address

        def here_only(ray_address: str, temp_dir: str | None = None) -> Any:
            return real(ray_address, self.temp_dir)

        ray_utils.write_ray_address = here_only
        try:
            self._cluster = Cluster(
                initialize_head=True,
                shutdown_at_exit=True,
                head_node_args=dict(
                    num_cpus=head_cpus,
                    temp_dir=temp_dir,
                    include_dashboard=dashboard,
                    dashboard_host="127.0.0.1",
                    dashboard_port=self.dashboard_port,
                    **self._ports(),
                    _system_config=system_config or {},
                ),
            )
        finally:
            ray_utils.write_ray_address = real
        self._nodes: dict[str, Any] = {}  # worker node id -> ray._private.node.Node

    def _ports(self) -> dict[str, Any]:
        return dict(
            object_store_memory=self._store,
            dashboard_agent_listen_port=_free_port(),
            metrics_export_port=_free_port(),
        )

    @property
    def address(self) -> str:
        return str(self._cluster.address)

    @property
    def head_id(self) -> str:
        head: Any = self._cluster.head_node
        return str(head.node_id)

    @property
    def dashboard_url(self) -> str | None:
        return f"http://127.0.0.1:{self.dashboard_port}" if self.dashboard_port else None

    def add_worker(self, num_cpus: float = 1, resources: dict[str, float] | None = None) -> str:
        """Start a worker node; returns its node id once the GCS knows it."""
        node = self._cluster.add_node(num_cpus=num_cpus, resources=resources or {}, **self._ports())
        self._nodes[node.node_id] = node
        return str(node.node_id)

    def remove_worker(self, node_id: str, *, graceful: bool = False) -> None:
        """Lose a worker node: all its processes are killed (SIGKILL unless ``graceful``)."""
        self._cluster.remove_node(self._nodes.pop(node_id), allow_graceful=graceful)

    def workers(self) -> list[str]:
        return sorted(self._nodes)

    def alive(self) -> set[str]:
        """Node ids the GCS reports alive (a killed node stays "alive" until its heartbeats stop)."""
        return {n["NodeID"] for n in ray.nodes() if n.get("Alive")}

    def metrics_urls(self) -> dict[str, str]:
        """Node id -> its Prometheus endpoint (Ray's metrics export, ``ray_*`` series)."""
        head: Any = self._cluster.head_node
        nodes = [head, *self._nodes.values()]
        return {
            str(n.node_id): f"http://127.0.0.1:{n.metrics_export_port}/metrics" for n in nodes
        }

    def shutdown(self) -> None:
        self._cluster.shutdown()
