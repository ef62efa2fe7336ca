"""An in-process operator for the security tests: ``serve()`` with ``LocalDriver`` hosts.

It yields the reconciler and the metrics server, and captures every log record
at DEBUG level (any logger, any thread) so tests can scan them for secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ray_syncer_testkit import start_in_thread

from ray_syncer.engine.options import EngineOptions
from ray_syncer.fleet.supervisor import LocalDriver, SupervisorCore
from ray_syncer.kube.client import KubeClient
from ray_syncer.kube.config import load_kubeconfig_text
from ray_syncer.operator.options import OperatorOptions
from ray_syncer.operator.serve import serve
from tests.badinput.world import CaptureHandler, install_crd, permissive_crd


@dataclass
class Env:
    src: Any
    dst: Any
    sc: KubeClient
    dc: KubeClient
    capture: CaptureHandler
    http: Any = None
    driver: LocalDriver = field(default_factory=LocalDriver)


@contextlib.asynccontextmanager
async def operator_env(**overrides: Any) -> AsyncIterator[Env]:
    src, dst = start_in_thread(name="source"), start_in_thread(name="destination")
    capture = CaptureHandler()
    capture.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    env = Env(src=src, dst=dst, sc=KubeClient(load_kubeconfig_text(src.kubeconfig())),
              dc=KubeClient(load_kubeconfig_text(dst.kubeconfig())), capture=capture)
    options = OperatorOptions(
        namespace=None, metrics_port=0, metrics_host="127.0.0.1", cluster_name="source",
        tick_s=0.3, discovery_ttl_s=1.0, probe_ttl_s=1.0,
        engine_options=EngineOptions(backoff_base_s=0.05, backoff_max_s=0.5, retry_base_s=0.05,
                                     retry_max_s=0.5),
    )
    for k, v in overrides.items():
        setattr(options, k, v)
    stop = asyncio.Event()
    task: asyncio.Task[Any] | None = None

    def started(_r: Any, http: Any) -> None:
        env.http = http

    try:
        await install_crd(env.sc, permissive_crd())
        task = asyncio.create_task(serve(
            options, backend=SupervisorCore(env.driver),
            own_config=load_kubeconfig_text(src.kubeconfig()), stop=stop, on_started=started,
        ))
        yield env
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, 30)
        await env.sc.close()
        await env.dc.close()
        root.removeHandler(capture)
        root.setLevel(old_level)
        src.stop()
        dst.stop()
