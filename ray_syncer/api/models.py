"""The KRMSyncer API (``syncer.gkelabs.io/v1alpha1``) as immutable pydantic models.

Why this module exists: the operator, the ``validate`` command and the tests all
need one Python view of a KRMSyncer that says exactly what the CRD in
``crds/krmsyncer.yaml`` says (docs/design.md §2). The CRD is what the API server
enforces; these models are what the operator enforces before it starts a single
watch. ``tests/api/test_agreement.py`` keeps the two equal.

How it meets its neighbours:

* ``parse_krmsyncer(raw)`` turns an object read from a cluster (or a file) into a
  ``KRMSyncer``, ignoring server metadata, or raises ``SpecError`` whose
  ``.errors`` are human messages such as ``spec.rules[1].kind: must not be empty``
  that the operator copies verbatim into condition messages.
* ``is_suspended_effectively(raw)`` answers "must this syncer stay silent?" even
  when the spec does not parse, so the operator errs on the safe side.
* The status models (``Condition``, ``ShardStatus``, ``KRMSyncerStatus``) are what the operator writes to ``/status``; build them by
  field name and serialise with ``.to_api()``.

Input rules mirror a structural CRD on a real API server: JSON ``null`` means
"absent" (the server prunes it), unknown fields are rejected with a precise
message (the server would silently prune them; we prefer to tell the user about
the typo), and types are strict (``"true"`` is not a boolean).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from ray_syncer import API_GROUP, API_VERSION, KIND

API_VERSION_FULL = f"{API_GROUP}/{API_VERSION}"

Mode = Literal["push", "pull"]
ConflictPolicy = Literal["Skip", "Adopt"]
DeletionPolicy = Literal["Delete", "Orphan"]
ImmutablePolicy = Literal["Recreate", "Report"]
LabelOperator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
ConditionStatus = Literal["True", "False", "Unknown"]

DEFAULT_SECRET_KEY = "kubeconfig"
DEFAULT_RESYNC_PERIOD = "10m"
MIN_RESYNC_SECONDS = 1.0

# ---------------------------------------------------------------------------
# Patterns. The CRD uses these exact strings (a test compares them), written
# with "[.]" instead of "\." so they read the same in YAML, CEL and Python.
# ---------------------------------------------------------------------------
DNS_LABEL_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_SUBDOMAIN_MAX = 253
SECRET_KEY_RE = r"^[-._a-zA-Z0-9]+$"
SECRET_KEY_MAX = 253
# Globs: only "*" is a wildcard; it matches any run of characters (dots too).
GROUP_GLOB_RE = r"^([a-z0-9*]([-a-z0-9.*]*[a-z0-9*])?)?$"
GROUP_MAX = 253
VERSION_GLOB_RE = r"^[a-z0-9*]+$"
VERSION_MAX = 63
KIND_GLOB_RE = r"^[A-Za-z*][A-Za-z0-9*]*$"
KIND_MAX = 63
FIELD_PATH_RE = r"^[A-Za-z0-9_-]+([.][A-Za-z0-9_-]+)*$"
FIELD_PATH_MAX = 256
LABEL_KEY_RE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_KEY_PREFIX_RE = r"^([^/]{1,253}/)?[^/]+$"  # the DNS prefix is at most 253 characters
LABEL_KEY_MAX = 317
LABEL_VALUE_RE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_VALUE_MAX = 63
# A Go time.Duration without sign: "90s", "10m", "1h30m", "1.5h", "250ms".
DURATION_RE = r"^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$"
DURATION_MAX = 32
CONDITION_TYPE_RE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_RE = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
MAX_LABEL_SELECTOR_ENTRIES = 64
MAX_RULES = 100
MAX_NAMESPACES = 256
MAX_SYNC_FIELDS = 64

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]+(?:[.][0-9]+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string such as ``"1h30m"``; ``ValueError`` if malformed.

    Signs and bare numbers are refused: a resync period is always positive and a
    unit-less ``"600"`` is ambiguous (Go's ``time.ParseDuration`` refuses it too).
    """
    if not isinstance(text, str) or len(text) > DURATION_MAX or not re.match(DURATION_RE, text):
        raise ValueError(
            f"must be a duration such as 90s, 10m or 1h30m (units ns, us, ms, s, m, h), got {_show(text)}"
        )
    return sum(float(num) * _DURATION_UNITS[unit] for num, unit in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """The shortest Go-style duration for whole seconds (``5400`` -> ``"1h30m"``)."""
    whole = int(seconds)
    if whole != seconds or whole <= 0:
        return f"{seconds}s"
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def _show(value: object, limit: int = 60) -> str:
    """A short, safe rendering of a user value for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check(value: str, *, pattern: str, max_len: int, what: str) -> str:
    if value == "":
        raise PydanticCustomError("krm", "must not be empty")
    if len(value) > max_len:
        raise PydanticCustomError(
            "krm", "must be at most {max} characters (got {n})", {"max": max_len, "n": len(value)}
        )
    if not re.match(pattern, value):
        raise PydanticCustomError(
            "krm", "must be {what}, got {got}", {"what": what, "got": _show(value)}
        )
    return value


_DNS_LABEL_WHAT = (
    "a DNS label (lowercase letters, digits and '-', starting and ending alphanumeric)"
)
_LABEL_KEY_WHAT = "a label key ([prefix/]name: name up to 63 alphanumerics, '-', '_' or '.'; prefix a DNS subdomain)"
_LABEL_VALUE_WHAT = (
    "a label value (up to 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric)"
)


def check_label_key(value: str) -> str:
    _check(value, pattern=LABEL_KEY_RE, max_len=LABEL_KEY_MAX, what=_LABEL_KEY_WHAT)
    if not re.match(LABEL_KEY_PREFIX_RE, value):
        raise PydanticCustomError("krm", "label key prefix must be at most 253 characters")
    return value


def check_label_value(value: str) -> str:
    if value == "":
        return value
    return _check(value, pattern=LABEL_VALUE_RE, max_len=LABEL_VALUE_MAX, what=_LABEL_VALUE_WHAT)


# ---------------------------------------------------------------------------
# Spec models: input from users. Aliases only (the wire names), strict types.
# ---------------------------------------------------------------------------


class _SpecModel(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )

    def to_api(self) -> dict[str, Any]:
        """The wire form (camelCase, absent fields omitted)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class LabelSelectorRequirement(_SpecModel):
    """One ``matchExpressions`` entry of a metav1.LabelSelector."""

    key: StrictStr
    operator: LabelOperator
    values: tuple[StrictStr, ...] | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return check_label_key(v)

    @field_validator("values")
    @classmethod
    def _values(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for i, item in enumerate(v or ()):
            try:
                check_label_value(item)
            except PydanticCustomError as exc:
                raise PydanticCustomError(
                    "krm", "[{i}]: {msg}", {"i": i, "msg": exc.message()}
                ) from None
        return v

    @model_validator(mode="after")
    def _operator_values(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise PydanticCustomError(
                "krm_field",
                "must be non-empty when operator is {op}",
                {"field": "values", "op": self.operator},
            )
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise PydanticCustomError(
                "krm_field",
                "must be empty when operator is {op}",
                {"field": "values", "op": self.operator},
            )
        return self

    def render(self) -> str:
        vals = ",".join(sorted(set(self.values or ())))
        if self.operator == "In":
            return f"{self.key} in ({vals})"
        if self.operator == "NotIn":
            return f"{self.key} notin ({vals})"
        if self.operator == "Exists":
            return self.key
        return f"!{self.key}"


class LabelSelector(_SpecModel):
    """metav1.LabelSelector: ``matchLabels`` AND ``matchExpressions``; empty matches everything."""

    match_labels: dict[StrictStr, StrictStr] | None = Field(default=None)
    match_expressions: tuple[LabelSelectorRequirement, ...] | None = None

    @field_validator("match_labels")
    @classmethod
    def _labels(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is None:
            return v
        if len(v) > MAX_LABEL_SELECTOR_ENTRIES:
            raise PydanticCustomError(
                "krm", "must have at most {n} entries", {"n": MAX_LABEL_SELECTOR_ENTRIES}
            )
        for key, value in v.items():
            try:
                check_label_key(key)
            except PydanticCustomError:
                raise PydanticCustomError(
                    "krm", "key {k} is not {what}", {"k": _show(key), "what": _LABEL_KEY_WHAT}
                ) from None
            try:
                check_label_value(value)
            except PydanticCustomError as exc:
                raise PydanticCustomError(
                    "krm", "value of {k}: {msg}", {"k": _show(key), "msg": exc.message()}
                ) from None
        return v

    @field_validator("match_expressions")
    @classmethod
    def _exprs(
        cls, v: tuple[LabelSelectorRequirement, ...] | None
    ) -> tuple[LabelSelectorRequirement, ...] | None:
        if v is not None and len(v) > MAX_LABEL_SELECTOR_ENTRIES:
            raise PydanticCustomError(
                "krm", "must have at most {n} entries", {"n": MAX_LABEL_SELECTOR_ENTRIES}
            )
        return v

    def render(self) -> str:
        """The selector in the API's string form, e.g. ``a=b,c in (d,e),!f``.

        Requirements are sorted by key, like client-go's ``LabelSelectorAsSelector``,
        so the same selector always renders the same string (it is part of a shard's
        identity). The empty selector renders as ``""`` (matches everything).
        """
        parts: list[tuple[str, str]] = [
            (k, f"{k}={v}") for k, v in (self.match_labels or {}).items()
        ]
        parts += [(r.key, r.render()) for r in self.match_expressions or ()]
        parts.sort(key=lambda kv: kv[0])
        return ",".join(p for _, p in parts)


class KubeConfigSecretRef(_SpecModel):
    """The Secret holding the other cluster's kubeconfig, in the KRMSyncer's own namespace."""

    name: StrictStr
    key: StrictStr = DEFAULT_SECRET_KEY
    # Accepted because the Go KRMSyncer used corev1.SecretReference {name, namespace}.
    # Only the KRMSyncer's own namespace is allowed (checked in parse_krmsyncer).
    namespace: StrictStr | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check(
            v,
            pattern=DNS_SUBDOMAIN_RE,
            max_len=DNS_SUBDOMAIN_MAX,
            what="a Secret name (DNS subdomain)",
        )

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return _check(
            v,
            pattern=SECRET_KEY_RE,
            max_len=SECRET_KEY_MAX,
            what="a Secret data key (alphanumerics, '-', '_' or '.')",
        )

    @field_validator("namespace")
    @classmethod
    def _ns(cls, v: str | None) -> str | None:
        if v is None:
            return v
        return _check(v, pattern=DNS_LABEL_RE, max_len=DNS_LABEL_MAX, what=_DNS_LABEL_WHAT)


class ClusterConfig(_SpecModel):
    kube_config_secret_ref: KubeConfigSecretRef


class Destination(_SpecModel):
    """``spec.destination`` (alias ``spec.remote``): the other cluster and the namespace mapping."""

    cluster_config: ClusterConfig
    namespace: StrictStr | None = None

    @field_validator("namespace")
    @classmethod
    def _ns(cls, v: str | None) -> str | None:
        if v is None:
            return v
        return _check(v, pattern=DNS_LABEL_RE, max_len=DNS_LABEL_MAX, what=_DNS_LABEL_WHAT)

    @property
    def secret_ref(self) -> KubeConfigSecretRef:
        return self.cluster_config.kube_config_secret_ref


class Rule(_SpecModel):
    """``spec.rules[]``: one group/version/kind (``*`` globs allowed) and its filters."""

    group: StrictStr
    version: StrictStr
    kind: StrictStr
    namespaces: tuple[StrictStr, ...] | None = None
    label_selector: LabelSelector | None = None
    sync_fields: tuple[StrictStr, ...] | None = None
    include_owned: StrictBool = False
    sync_status: StrictBool = False
    immutable_policy: ImmutablePolicy = "Recreate"

    @field_validator("group")
    @classmethod
    def _group(cls, v: str) -> str:
        if v == "":
            return v  # the core group
        return _check(
            v,
            pattern=GROUP_GLOB_RE,
            max_len=GROUP_MAX,
            what="an API group (\"\" for core) or a glob of lowercase letters, digits, '-', '.' and '*'",
        )

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        return _check(
            v,
            pattern=VERSION_GLOB_RE,
            max_len=VERSION_MAX,
            what="an API version such as v1 or v1beta1, or a glob of lowercase letters, digits and '*'",
        )

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        return _check(
            v,
            pattern=KIND_GLOB_RE,
            max_len=KIND_MAX,
            what="a Kind such as ConfigMap, or a glob of letters, digits and '*'",
        )

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        if len(v) > MAX_NAMESPACES:
            raise PydanticCustomError("krm", "must have at most {n} entries", {"n": MAX_NAMESPACES})
        for i, ns in enumerate(v):
            try:
                _check(ns, pattern=DNS_LABEL_RE, max_len=DNS_LABEL_MAX, what=_DNS_LABEL_WHAT)
            except PydanticCustomError as exc:
                raise PydanticCustomError(
                    "krm", "[{i}]: {msg}", {"i": i, "msg": exc.message()}
                ) from None
        _no_duplicates(v)
        return v

    @field_validator("sync_fields")
    @classmethod
    def _sync_fields(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        if len(v) > MAX_SYNC_FIELDS:
            raise PydanticCustomError(
                "krm", "must have at most {n} entries", {"n": MAX_SYNC_FIELDS}
            )
        for i, path in enumerate(v):
            try:
                _check(
                    path,
                    pattern=FIELD_PATH_RE,
                    max_len=FIELD_PATH_MAX,
                    what="a dotted field path such as spec or spec.template",
                )
            except PydanticCustomError as exc:
                raise PydanticCustomError(
                    "krm", "[{i}]: {msg}", {"i": i, "msg": exc.message()}
                ) from None
        _no_duplicates(v)
        return v

    @property
    def is_glob(self) -> bool:
        return "*" in self.group or "*" in self.version or "*" in self.kind

    @property
    def effective_sync_fields(self) -> tuple[str, ...] | None:
        """None copies every field; ``[]`` means the same (Go's ``omitempty`` made them equal)."""
        return self.sync_fields or None

    @property
    def effective_sync_status(self) -> bool:
        """Status is synced when ``syncStatus`` is true or ``status`` is listed in ``syncFields``."""
        return self.sync_status or "status" in (self.sync_fields or ())

    @property
    def selector_string(self) -> str | None:
        """The label selector for list/watch calls, or None when the rule has none."""
        if self.label_selector is None:
            return None
        return self.label_selector.render() or None

    @property
    def gvk(self) -> str:
        return (
            f"{self.group}/{self.version}/{self.kind}"
            if self.group
            else f"{self.version}/{self.kind}"
        )


def _no_duplicates(values: Sequence[str]) -> None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v in seen:
            raise PydanticCustomError("krm", "[{i}]: duplicate value {v}", {"i": i, "v": _show(v)})
        seen.add(v)


class KRMSyncerSpec(_SpecModel):
    """``spec``: docs/design.md §2. Read ``.suspended_effective`` and ``.target``, not the aliases."""

    suspend: StrictBool | None = None
    suspended: StrictBool | None = None
    mode: Mode = "push"
    destination: Destination | None = None
    remote: Destination | None = None
    rules: tuple[Rule, ...]
    conflict_policy: ConflictPolicy = "Skip"
    deletion_policy: DeletionPolicy = "Delete"
    resync_period: StrictStr = DEFAULT_RESYNC_PERIOD

    @field_validator("rules")
    @classmethod
    def _rules(cls, v: tuple[Rule, ...]) -> tuple[Rule, ...]:
        if not v:
            raise PydanticCustomError("krm", "must list at least one rule")
        if len(v) > MAX_RULES:
            raise PydanticCustomError("krm", "must have at most {n} rules", {"n": MAX_RULES})
        return v

    @field_validator("resync_period")
    @classmethod
    def _resync(cls, v: str) -> str:
        try:
            seconds = parse_duration(v)
        except ValueError as exc:
            raise PydanticCustomError("krm", str(exc)) from None
        if seconds < MIN_RESYNC_SECONDS:
            raise PydanticCustomError("krm", "must be at least 1s, got {got}", {"got": _show(v)})
        return v

    @model_validator(mode="after")
    def _cross_field(self) -> KRMSyncerSpec:
        problems = spec_cross_field_errors(self.model_dump(by_alias=True, exclude_none=True))
        if problems:
            field, message = problems[0]
            raise PydanticCustomError("krm_field", message, {"field": field})
        return self

    @property
    def suspended_effective(self) -> bool:
        return bool(self.suspend) or bool(self.suspended)

    @property
    def target(self) -> Destination:
        """The other cluster: ``destination`` or its alias ``remote`` (exactly one is set)."""
        target = self.destination if self.destination is not None else self.remote
        assert target is not None  # guaranteed by _cross_field
        return target

    @property
    def secret_ref(self) -> KubeConfigSecretRef:
        return self.target.secret_ref

    @property
    def resync_period_seconds(self) -> float:
        return parse_duration(self.resync_period)


def spec_cross_field_errors(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rules that span fields, on the raw (null-pruned) spec: (field, message) pairs.

    Shared by the model validator and ``parse_krmsyncer`` (which runs it even when
    other fields are broken, so every problem is reported at once). The CRD has the
    same rules as CEL ``x-kubernetes-validations``.
    """
    out: list[tuple[str, str]] = []
    if not isinstance(spec, Mapping):
        return out
    s1, s2 = spec.get("suspend"), spec.get("suspended")
    if isinstance(s1, bool) and isinstance(s2, bool) and s1 != s2:
        out.append(
            (
                "suspended",
                f"disagrees with spec.suspend (suspend: {str(s1).lower()}, suspended: "
                f"{str(s2).lower()}); set only one of them. Until fixed, the syncer stays suspended",
            )
        )
    has_dest, has_remote = "destination" in spec, "remote" in spec
    if has_dest and has_remote:
        out.append(
            (
                "remote",
                "must not be set together with spec.destination (remote is an alias of destination); set only one",
            )
        )
    elif not has_dest and not has_remote:
        out.append(("destination", "is required (or its alias spec.remote)"))
    return out


# ---------------------------------------------------------------------------
# Metadata and the whole object.
# ---------------------------------------------------------------------------


class ObjectMeta(BaseModel):
    """The metadata fields the operator uses; everything else (managedFields ...) is ignored."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )

    name: str
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


# ---------------------------------------------------------------------------
# Status models: written by the operator. Constructed by field name.
# ---------------------------------------------------------------------------


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


def _check_rfc3339(v: str) -> str:
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00"))
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

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


class KRMSyncer(BaseModel):
    """A parsed KRMSyncer. ``status`` is parsed leniently and never makes the spec invalid."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, validate_by_alias=True
    )

    api_version: str = API_VERSION_FULL
    kind: str = KIND
    metadata: ObjectMeta
    spec: KRMSyncerSpec
    status: KRMSyncerStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


# ---------------------------------------------------------------------------
# Parsing with precise, human error messages.
# ---------------------------------------------------------------------------


class SpecError(ValueError):
    """An invalid KRMSyncer. ``.errors``: one message per problem, each naming its field."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors: list[str] = list(errors) or ["invalid KRMSyncer"]
        super().__init__("; ".join(self.errors))

    def __str__(self) -> str:
        return "; ".join(self.errors)


# Fields of the Go KRMSyncer we deliberately do not implement: say so instead of "unknown".
_UNSUPPORTED_FIELDS = {
    "transforms": "not supported by ray-syncer (the Go KRMSyncer's field transforms); remove it",
    "gcsBucketConfig": "not supported by ray-syncer (only cluster destinations are); remove it",
}


def prune_nulls(value: Any) -> Any:
    """Drop ``null`` map values, recursively, as the API server does for a structural schema."""
    if isinstance(value, Mapping):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value


def format_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{part!r}]"
    return out


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``X | None`` / ``tuple[X, ...]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, tuple, list):
        for arg in typing.get_args(annotation):
            found = _unwrap_model(arg)
            if found is not None:
                return found
    return None


def _model_at(root: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = next(
            (f for n, f in model.model_fields.items() if (f.alias or n) == part),
            None,
        )
        if field is None:
            return None
        model = _unwrap_model(field.annotation)
    return model


def _wire_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _human(err: Mapping[str, Any], root: type[BaseModel]) -> tuple[tuple[Any, ...], str]:
    """(location, message) for one pydantic error dict."""
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p and p.endswith("]")))
    typ = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if typ == "krm_field":
        return (*loc, ctx["field"]), err["msg"]
    if typ == "krm":
        # Item validators report "[3]: problem": fold the index into the path.
        m = re.fullmatch(r"(?:([A-Za-z]+))?\[(\d+)\]: (.*)", err["msg"], flags=re.S)
        if m:
            field = (m.group(1),) if m.group(1) else ()
            return (*loc, *field, int(m.group(2))), m.group(3)
        return loc, err["msg"]
    if typ == "missing":
        hint = ' (use "" for the core group)' if loc and loc[-1] == "group" else ""
        return loc, f"is required{hint}"
    if typ == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        if name in _UNSUPPORTED_FIELDS:
            return loc, _UNSUPPORTED_FIELDS[name]
        parent = _model_at(root, loc[:-1])
        msg = "unknown field"
        if parent is not None:
            close = difflib.get_close_matches(name, _wire_names(parent), n=1, cutoff=0.6)
            if close:
                msg += f" (did you mean {close[0]!r}?)"
            else:
                msg += f" (allowed: {', '.join(_wire_names(parent))})"
        return loc, msg
    if typ == "bool_type":
        return loc, f"must be true or false, got {_show(value)}"
    if typ == "string_type":
        return loc, f"must be a string, got {_show(value)}"
    if typ in ("int_type", "int_from_float", "float_type"):
        return loc, f"must be a number, got {_show(value)}"
    if typ in ("list_type", "tuple_type"):
        return loc, f"must be a list, got {_show(value)}"
    if typ in ("dict_type", "model_type", "model_attributes_type"):
        return loc, f"must be an object, got {_show(value)}"
    if typ == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "")
        return loc, f"must be one of {expected}, got {_show(value)}"
    if typ in ("too_short", "string_too_short"):
        return loc, "must not be empty"
    return loc, str(err.get("msg", "is invalid"))


def _spec_errors(exc: ValidationError, root: type[BaseModel], prefix: tuple[Any, ...]) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        loc, msg = _human(err, root)
        out.append(f"{format_path(prefix + loc)}: {msg}")
    return out


def _dedupe(messages: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for m in messages:
        if m not in seen:
            seen.add(m)
            out.append(m)
    return out


def parse_spec(spec: Any) -> KRMSyncerSpec:
    """Validate a bare ``spec`` mapping; ``SpecError`` with ``spec.``-prefixed messages."""
    if not isinstance(spec, Mapping):
        raise SpecError([f"spec: must be an object, got {_show(spec)}"])
    spec = prune_nulls(spec)
    errors = [f"spec.{field}: {msg}" for field, msg in spec_cross_field_errors(spec)]
    try:
        model = KRMSyncerSpec.model_validate(spec)
    except ValidationError as exc:
        errors += _spec_errors(exc, KRMSyncerSpec, ("spec",))
        raise SpecError(_dedupe(errors)) from None
    if errors:  # unreachable in practice: the model validator runs the same checks
        raise SpecError(_dedupe(errors))
    return model


def parse_status(raw: Any) -> KRMSyncerStatus | None:
    """The status as last written, or None if absent or unreadable (never raises)."""
    if not isinstance(raw, Mapping):
        return None
    try:
        return KRMSyncerStatus.model_validate(prune_nulls(raw))
    except ValidationError:
        return None


_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")


def parse_krmsyncer(obj: Any) -> KRMSyncer:
    """Parse a whole KRMSyncer object (from a cluster or a manifest file).

    Server metadata (uid, resourceVersion, managedFields ...) and ``status`` never
    cause an error. Raises ``SpecError`` listing every problem found.
    """
    if not isinstance(obj, Mapping):
        raise SpecError([f"object: must be a mapping, got {_show(obj)}"])
    errors: list[str] = []
    for key in obj:
        if key not in _TOP_LEVEL:
            close = difflib.get_close_matches(str(key), _TOP_LEVEL, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.append(f"{format_path([key])}: unknown field{hint}")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version != API_VERSION_FULL:
        errors.append(f"apiVersion: must be {API_VERSION_FULL}, got {_show(api_version)}")
    if kind != KIND:
        errors.append(f"kind: must be {KIND}, got {_show(kind)}")
    meta_raw = obj.get("metadata")
    meta: ObjectMeta | None = None
    if (
        not isinstance(meta_raw, Mapping)
        or not isinstance(meta_raw.get("name"), str)
        or not meta_raw["name"]
    ):
        errors.append("metadata.name: is required")
    else:
        try:
            meta = ObjectMeta.model_validate(meta_raw)
        except ValidationError as exc:
            errors += [f"metadata.{m}" for m in _spec_errors(exc, ObjectMeta, ())]
    spec: KRMSyncerSpec | None = None
    if "spec" not in obj or obj.get("spec") is None:
        errors.append("spec: is required")
    else:
        try:
            spec = parse_spec(obj["spec"])
        except SpecError as exc:
            errors += exc.errors
    if spec is not None and meta is not None:
        ref_ns = spec.secret_ref.namespace
        if ref_ns is not None and meta.namespace is not None and ref_ns != meta.namespace:
            which = "destination" if spec.destination is not None else "remote"
            errors.append(
                f"spec.{which}.clusterConfig.kubeConfigSecretRef.namespace: must be empty or the "
                f"KRMSyncer's own namespace {meta.namespace!r}, got {ref_ns!r} (cross-namespace "
                "Secret references are not allowed)"
            )
    if errors or spec is None or meta is None:
        raise SpecError(errors)
    return KRMSyncer.model_validate(
        {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": meta,
            "spec": spec,
            "status": parse_status(obj.get("status")),
        }
    )


def is_suspended_effectively(raw: Any) -> bool:
    """True when the operator must do nothing for this KRMSyncer (docs/design.md §2, §4.5).

    That is: ``suspend`` or ``suspended`` is true, or they disagree, or the spec
    does not parse at all. Accepts either a whole object or a bare spec mapping.
    """
    if not isinstance(raw, Mapping):
        return True
    spec_raw = (
        raw.get("spec") if ("spec" in raw or "apiVersion" in raw or "metadata" in raw) else raw
    )
    if not isinstance(spec_raw, Mapping):
        return True
    s1, s2 = spec_raw.get("suspend"), spec_raw.get("suspended")
    if s1 is True or s2 is True:
        return True
    try:
        spec = parse_spec(spec_raw)
    except SpecError:
        return True
    return spec.suspended_effective
