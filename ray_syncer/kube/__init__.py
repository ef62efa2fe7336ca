"""Talking to Kubernetes clusters: kubeconfig loading, the async HTTP client, discovery.

``config`` turns kubeconfigs into a ``ClusterConfig`` (safely, for Secrets);
``client`` is the one module that does HTTP to clusters (``KubeClient``);
``discovery`` expands KRMSyncer rules (globs) into concrete kinds.
"""

from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo, TransportError
from ray_syncer.kube.config import (
    ClusterConfig,
    KubeconfigError,
    load_default,
    load_kubeconfig_text,
)
from ray_syncer.kube.discovery import expand_rule, is_glob, resolve_exact

__all__ = [
    "ApiError",
    "ClusterConfig",
    "KubeClient",
    "KubeconfigError",
    "ResourceInfo",
    "TransportError",
    "expand_rule",
    "is_glob",
    "load_default",
    "load_kubeconfig_text",
    "resolve_exact",
]
