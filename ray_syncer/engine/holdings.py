"""Holdings: what the destination holds for one shard, in a few bytes per object.

For every owned destination copy the engine needs three things: its uid (the
precondition of a safe delete), its resourceVersion (to tell our own writes
from someone else's, for drift) and the content hash of what we last wrote
(to skip no-op writes). A dict of tuples of strings would cost ~300 bytes per
object; the usual case (uid is a UUID, resourceVersion a decimal) is packed
into one Python int instead (uid:128 | rv:64 | hash:63 bits, ~60 bytes).
Anything else falls back to a tuple, so odd servers still work.

Holdings are fed by the destination list/watch (seeding hashes from the
content-hash annotation after a restart) and by the applier's write
responses.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import NamedTuple

_M64 = (1 << 64) - 1


class Held(NamedTuple):
    uid: str
    rv: str
    hash: int  # 0 means "unknown: write it"


def rv_int(rv: str) -> int | None:
    """A resourceVersion as a number when it is one (etcd's are; the API calls them opaque)."""
    if rv.isdigit() and len(rv) <= 19:
        return int(rv)
    return None


def rv_newer(a: str, b: str) -> bool:
    """Whether resourceVersion ``a`` is newer than ``b`` (unknown order: different means newer)."""
    ia, ib = rv_int(a), rv_int(b)
    if ia is None or ib is None:
        return a != b
    return ia > ib


def _pack(uid: str, rv: str, h: int) -> int | Held:
    n = rv_int(rv)
    if n is None or not 0 <= h <= _M64:
        return Held(uid, rv, h)
    try:
        u = uuid.UUID(uid)
    except ValueError:
        return Held(uid, rv, h)
    if str(u) != uid:
        return Held(uid, rv, h)  # not canonical form; keep the exact text for preconditions
    return (u.int << 128) | (n << 64) | h


def _unpack(value: int | Held) -> Held:
    if isinstance(value, Held):
        return value
    return Held(str(uuid.UUID(int=value >> 128)), str((value >> 64) & _M64), value & _M64)


class Holdings:
    def __init__(self) -> None:
        self._d: dict[str, int | Held] = {}

    def get(self, key: str) -> Held | None:
        value = self._d.get(key)
        return None if value is None else _unpack(value)

    def put(self, key: str, *, uid: str, rv: str, hash: int) -> None:
        self._d[key] = _pack(uid, rv, hash)

    def pop(self, key: str) -> Held | None:
        value = self._d.pop(key, None)
        return None if value is None else _unpack(value)

    def __contains__(self, key: object) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def keys(self) -> list[str]:
        return list(self._d)

    def replace_with(self, other: Holdings, *, keep: set[str] | None = None) -> None:
        """Take ``other``'s content, keeping entries of ``keep`` (and newer rvs) from ours."""
        merged = other._d
        for key, value in self._d.items():
            mine = _unpack(value)
            theirs = merged.get(key)
            if theirs is None:
                if keep and key in keep:
                    merged[key] = value
            elif rv_newer(mine.rv, _unpack(theirs).rv):
                merged[key] = value
        self._d = merged
