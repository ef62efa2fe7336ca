"""The status the operator writes on a KRMSyncer: conditions and the per-shard summary.

Why it exists: ``status`` is read by people (``kubectl describe``, printer
columns) and by the DR tools; these models are its one shape. Build them by
field name and serialise with ``.to_api()``; a status written by a newer
operator still parses (unknown fields are ignored).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from ray_syncer.api.formats import CONDITION_REASON_RE, CONDITION_TYPE_RE, _show

ConditionStatus = Literal["True", "False", "Unknown"]


class _StatusModel(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="ignore",  # status written by a newer operator must not break parsing
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    def to_api(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def rfc3339(ts: float | None = None) -> str:
    """A metav1.Time string (second precision, UTC, ``Z``) for a unix time (default: now)."""
    when = (
        datetime.fromtimestamp(ts, tz=timezone.utc)
        if ts is not None
        else datetime.now(timezone.utc)
    )
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    """The unix time of a metav1.Time string; ValueError when it is not one."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _check_rfc3339(v: str) -> str:
    try:
        parse_rfc3339(v)
    except ValueError:
        raise PydanticCustomError(
            "krm", "must be an RFC 3339 time, got {got}", {"got": _show(v)}
        ) from None
    return v


class Condition(_StatusModel):
    """metav1.Condition."""

    type: StrictStr = Field(pattern=CONDITION_TYPE_RE, max_length=316)
    status: ConditionStatus
    reason: StrictStr = Field(pattern=CONDITION_REASON_RE, max_length=1024)
    message: StrictStr = Field(default="", max_length=32768)
    last_transition_time: StrictStr
    observed_generation: StrictInt | None = Field(default=None, ge=0)

    @field_validator("last_transition_time")
    @classmethod
    def _time(cls, v: str) -> str:
        return _check_rfc3339(v)


class ShardStatus(_StatusModel):
    """One shard (syncer x resolved kind x source namespace) in ``status.shards``.

    ``name`` is the shard id (``ShardSpec.shard_id``); the operator's status
    module writes entries in this shape, worst shards first.
    """

    name: StrictStr
    state: StrictStr
    group: StrictStr | None = None
    version: StrictStr | None = None
    kind: StrictStr | None = None
    namespace: StrictStr | None = None  # None: all namespaces (or a cluster-scoped kind)
    objects: StrictInt = Field(default=0, ge=0)
    pending: StrictInt = Field(default=0, ge=0)
    errors: StrictInt = Field(default=0, ge=0)
    conflicts: StrictInt = Field(default=0, ge=0)
    last_sync_time: StrictStr | None = None
    lag_seconds: StrictFloat | StrictInt = Field(default=0.0, ge=0)
    # Now minus the last time the shard knew it was current (engine.recovery); absent until once.
    recovery_point_seconds: StrictFloat | StrictInt | None = Field(default=None, ge=0)
    message: StrictStr | None = None

    @field_validator("last_sync_time")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        return v if v is None else _check_rfc3339(v)


class KRMSyncerStatus(_StatusModel):
    observed_generation: StrictInt | None = Field(default=None, ge=0)
    conditions: tuple[Condition, ...] = ()
    objects: StrictInt = Field(default=0, ge=0)  # sum over shards: the Objects printer column
    shard_count: StrictInt = Field(default=0, ge=0)
    shards: tuple[ShardStatus, ...] = ()
    shards_omitted: StrictInt | None = Field(default=None, ge=0)  # entries cut from a long list
    # How each glob rule expanded, one human line per rule ("*.cnrm... -> 12 kinds: ...").
    expanded_rules: tuple[StrictStr, ...] = ()
    conflicts_sample: tuple[StrictStr, ...] = ()  # a bounded sample of "namespace/name (Kind)"
    # The worst shard's recovery point (seconds), and the target it is held to.
    recovery_point_seconds: StrictFloat | StrictInt | None = Field(default=None, ge=0)
    rpo_target_seconds: StrictFloat | StrictInt | None = Field(default=None, ge=0)
    # now - recovery_point_seconds, rounded down: where a restarted operator starts from.
    recovery_point_time: StrictStr | None = None

    @field_validator("recovery_point_time")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        return v if v is None else _check_rfc3339(v)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)
