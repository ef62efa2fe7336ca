"""This machine's process tree, read from /proc: children, descendants, names.

Why it exists: ending a local Ray to the last process, and knowing which
processes are its own, needs the process tree; the start guard (a separate
process) needs the same view. Empty answers where there is no /proc.
"""

from __future__ import annotations

import os


def children_map() -> dict[int, list[int]]:
    """Parent pid -> its live (not zombie) children, from /proc (empty where there is none)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) < 2 or fields[0] in (b"Z", b"X"):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def children(pid: int) -> list[int]:
    return children_map().get(pid, [])


def live_descendants(root: int) -> list[int]:
    """Live (not zombie) descendants of ``root``."""
    tree = children_map()
    found: list[int] = []
    todo = [root]
    while todo:
        for pid in tree.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def describe(pid: int) -> str:
    name = comm(pid)
    return f"{pid} ({name})" if name else str(pid)
