"""Field formats of the KRMSyncer API: patterns, limits, durations, label keys and values.

Why it exists: the CRD (``crds/krmsyncer.yaml``) and the pydantic models must
check every field the same way; these are the one copy of each pattern and
limit, which ``tests/api`` compares with the CRD's. The patterns are written
with "[.]" instead of "\\." so they read the same in YAML, CEL and Python.
"""

from __future__ import annotations

import re

from pydantic_core import PydanticCustomError

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
