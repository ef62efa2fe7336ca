"""ray-syncer: KRMSyncer rebuilt in Python on Ray.

A Kubernetes operator for active-passive disaster recovery: it mirrors the
resources named by ``KRMSyncer`` objects from a source cluster to a destination
cluster. See README.md for usage and docs/design.md for the design.
"""

__version__ = "0.1.0"

API_GROUP = "syncer.gkelabs.io"
API_VERSION = "v1alpha1"
KIND = "KRMSyncer"
PLURAL = "krmsyncers"
FIELD_MANAGER = "krm-syncer"
