"""The KRMSyncer API: models (the Python view), the CRD (the API server's view) and validation.

``models`` is the one import the operator needs: ``parse_krmsyncer``,
``is_suspended_effectively``, ``SpecError`` and the status models. ``crd`` and
``validate`` are the ``ray-syncer crd`` / ``ray-syncer validate`` subcommands.
"""

from ray_syncer.api.formats import parse_duration
from ray_syncer.api.models import Destination, KRMSyncer, KRMSyncerSpec, LabelSelector, Rule
from ray_syncer.api.parse import (
    SpecError,
    is_suspended_effectively,
    parse_krmsyncer,
    parse_spec,
    parse_status,
)
from ray_syncer.api.status import Condition, KRMSyncerStatus, ShardStatus, rfc3339

__all__ = [
    "Condition",
    "Destination",
    "KRMSyncer",
    "KRMSyncerSpec",
    "KRMSyncerStatus",
    "LabelSelector",
    "Rule",
    "ShardStatus",
    "SpecError",
    "is_suspended_effectively",
    "parse_duration",
    "parse_krmsyncer",
    "parse_spec",
    "parse_status",
    "rfc3339",
]
