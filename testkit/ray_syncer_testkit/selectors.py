"""Label and field selectors, parsed from query strings as kube-apiserver does.

Label selectors support ``=``, ``==``, ``!=``, ``in``, ``notin``, ``key`` and
``!key``. Field selectors support ``=``, ``==`` and ``!=`` on
``metadata.name``, ``metadata.namespace`` and the extra field labels a kind
declares (kinds.py). store.py and watch.py call :meth:`matches` per object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import StatusError, bad_request

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("=", "in"):
            return has and labels[self.key] in self.values
        # "!=" and "notin" match objects without the key, as in Kubernetes.
        return not has or labels[self.key] not in self.values


def _split_terms(text: str) -> list[str]:
    terms: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return [t.strip() for t in terms if t.strip()]


def _check_key(key: str, term: str) -> str:
    if not _KEY.match(key):
        raise bad_request(f"unable to parse requirement: invalid label key \"{key}\" in \"{term}\"")
    return key


class LabelSelector:
    def __init__(self, requirements: list[Requirement]) -> None:
        self.requirements = requirements

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector | None:
        if not text or not text.strip():
            return None
        reqs: list[Requirement] = []
        for term in _split_terms(text):
            m = re.fullmatch(r"(\S+)\s+(in|notin)\s*\(([^)]*)\)", term)
            if m:
                values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
                reqs.append(Requirement(_check_key(m.group(1), term), m.group(2), values))
                continue
            m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)", term)
            if m:
                op = "=" if m.group(2) in ("=", "==") else "!="
                reqs.append(Requirement(_check_key(m.group(1), term), op, (m.group(3),)))
                continue
            m = re.fullmatch(r"!\s*(\S+)", term)
            if m:
                reqs.append(Requirement(_check_key(m.group(1), term), "!"))
                continue
            if re.fullmatch(r"\S+", term):
                reqs.append(Requirement(_check_key(term, term), "exists"))
                continue
            raise bad_request(f"unable to parse requirement: found '{term}', expected: identifier")
        return cls(reqs)

    def matches(self, obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in self.requirements)


def _field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


class FieldSelector:
    def __init__(self, terms: list[tuple[str, bool, str]]) -> None:
        self.terms = terms  # (field, equal?, value)

    @classmethod
    def parse(cls, text: str | None, *, allowed: tuple[str, ...], kind: str) -> FieldSelector | None:
        if not text or not text.strip():
            return None
        terms: list[tuple[str, bool, str]] = []
        for term in _split_terms(text):
            m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(.*)", term)
            if not m:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
            field, value = m.group(1), m.group(3).strip()
            if field not in ("metadata.name", "metadata.namespace", *allowed):
                raise StatusError(
                    400,
                    "BadRequest",
                    f'field label not supported: {field}',
                )
            terms.append((field, m.group(2) != "!=", value))
        return cls(terms)

    def matches(self, obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, f) == v) == eq for f, eq, v in self.terms)

    def exact_name(self) -> str | None:
        """The name an ``metadata.name=x`` term pins, letting list skip a scan."""
        for f, eq, v in self.terms:
            if f == "metadata.name" and eq:
                return v
        return None
