"""The KRMSyncer API (``syncer.gkelabs.io/v1alpha1``) as immutable pydantic models.

Why this module exists: the operator, the ``validate`` command and the tests all
need one Python view of a KRMSyncer that says exactly what the CRD in
``crds/krmsyncer.yaml`` says (docs/design.md §2). The CRD is what the API server
enforces; these models are what the operator enforces before it starts a single
watch. ``tests/api/test_agreement.py`` keeps the two equal.

How it meets its neighbours:

* the field formats (patterns, limits, durations) live in ``api.formats``, the
  status models the operator writes in ``api.status``;
* ``api.parse`` turns an object read from a cluster (or a file) into a
  ``KRMSyncer`` (``parse_krmsyncer``), with ``SpecError`` messages such as
  ``spec.rules[1].kind: must not be empty`` that the operator copies verbatim
  into condition messages, and answers ``is_suspended_effectively``.

Input rules mirror a structural CRD on a real API server: JSON ``null`` means
"absent" (the server prunes it), unknown fields are rejected with a precise
message (the server would silently prune them; we prefer to tell the user about
the typo), and types are strict (``"true"`` is not a boolean).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from ray_syncer import API_GROUP, API_VERSION, KIND
from ray_syncer.api.formats import (
    _DNS_LABEL_WHAT,
    _LABEL_KEY_WHAT,
    DNS_LABEL_MAX,
    DNS_LABEL_RE,
    DNS_SUBDOMAIN_MAX,
    DNS_SUBDOMAIN_RE,
    FIELD_PATH_MAX,
    FIELD_PATH_RE,
    GROUP_GLOB_RE,
    GROUP_MAX,
    KIND_GLOB_RE,
    KIND_MAX,
    MAX_LABEL_SELECTOR_ENTRIES,
    MAX_NAMESPACES,
    MAX_RULES,
    MAX_SYNC_FIELDS,
    SECRET_KEY_MAX,
    SECRET_KEY_RE,
    VERSION_GLOB_RE,
    VERSION_MAX,
    _check,
    _show,
    check_label_key,
    check_label_value,
    format_duration,
    parse_duration,
)
from ray_syncer.api.status import KRMSyncerStatus

API_VERSION_FULL = f"{API_GROUP}/{API_VERSION}"

Mode = Literal["push", "pull"]
ConflictPolicy = Literal["Skip", "Adopt"]
DeletionPolicy = Literal["Delete", "Orphan"]
ImmutablePolicy = Literal["Recreate", "Report"]
LabelOperator = Literal["In", "NotIn", "Exists", "DoesNotExist"]

DEFAULT_SECRET_KEY = "kubeconfig"
DEFAULT_RESYNC_PERIOD = "10m"
MIN_RESYNC_SECONDS = 1.0
MIN_RPO_TARGET_SECONDS = 1.0

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



def _duration_at_least(v: str, minimum: float) -> str:
    """A Go duration of at least ``minimum`` seconds."""
    try:
        seconds = parse_duration(v)
    except ValueError as exc:
        raise PydanticCustomError("krm", str(exc)) from None
    if seconds < minimum:
        raise PydanticCustomError("krm", "must be at least {least}, got {got}",
                                  {"least": format_duration(minimum), "got": _show(v)})
    return v

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
    # The recovery point the standby must keep (a duration); past it, the
    # RecoveryPointObjective condition goes False and a Warning Event is posted.
    rpo_target: StrictStr | None = None

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
        return _duration_at_least(v, MIN_RESYNC_SECONDS)

    @field_validator("rpo_target")
    @classmethod
    def _rpo(cls, v: str | None) -> str | None:
        return None if v is None else _duration_at_least(v, MIN_RPO_TARGET_SECONDS)

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

    @property
    def rpo_target_seconds(self) -> float | None:
        return None if self.rpo_target is None else parse_duration(self.rpo_target)


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
