"""The two substrates the cluster-facing suites run on: the in-memory server and real clusters.

``memory`` is the project's in-memory API server (``ray_syncer_testkit``): it
runs anywhere. ``real`` is a pair of real clusters, in this order of choice:

1. ``KUBEBUILDER_ASSETS`` (controller-runtime's envtest convention): two control
   planes started from those binaries for the whole session
   (``ray_syncer_testkit.envtest``), with a controller-manager when the folder
   has one;
2. ``KRMSYNCER_E2E_SOURCE_KUBECONFIG`` and ``KRMSYNCER_E2E_DEST_KUBECONFIG``: any
   two clusters (``make test-integration`` points them at kind).

With neither, every ``real`` test skips and says so. The conformance, e2e and
DR suites take the ``substrate`` fixture, so each of their tests runs once per
substrate (test ids end in ``[memory]`` or ``[real]``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ray_syncer_testkit.envtest import ControlPlane, control_planes, find_assets

SUBSTRATES = ("memory", "real")
SOURCE_ENV = "KRMSYNCER_E2E_SOURCE_KUBECONFIG"
DEST_ENV = "KRMSYNCER_E2E_DEST_KUBECONFIG"


@dataclass(frozen=True)
class RealCluster:
    name: str
    kubeconfig: str  # text; credentials inline for envtest, as given for an env kubeconfig
    plane: ControlPlane | None  # the envtest control plane, None for a cluster from the env

    @property
    def has_controller_manager(self) -> bool:
        # A cluster from the environment is a whole cluster (kind); envtest may run without one.
        return self.plane is None or self.plane.has_controller_manager


@dataclass(frozen=True)
class RealClusters:
    source: RealCluster
    dest: RealCluster
    kind: str  # "envtest" or "kubeconfig"


def real_clusters() -> Iterator[RealClusters]:
    """Yields the real pair for the session (stopping envtest planes after), or skips saying why."""
    assets, why_not = find_assets()
    if assets is not None:
        with control_planes(("source", "destination"), assets=assets) as planes:
            yield RealClusters(
                RealCluster("source", planes["source"].kubeconfig(), planes["source"]),
                RealCluster("destination", planes["destination"].kubeconfig(), planes["destination"]),
                "envtest",
            )
        return
    src, dst = os.environ.get(SOURCE_ENV), os.environ.get(DEST_ENV)
    if src and dst:
        yield RealClusters(
            RealCluster("source", Path(src).read_text(), None),
            RealCluster("destination", Path(dst).read_text(), None),
            "kubeconfig",
        )
        return
    pytest.skip(f"real clusters: {why_not}; or set {SOURCE_ENV} and {DEST_ENV}")
