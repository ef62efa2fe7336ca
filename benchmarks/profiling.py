"""Optional sampling profiles of the syncer process (``--profile``), via py-spy if installed.

Why this exists: when a target is missed, the report must say what limits it.
``py-spy record --format raw`` gives collapsed stacks without touching the code
under test; this module starts it on a pid, stops it with SIGINT (py-spy then
writes its file), and summarises the stacks into the functions with the largest
inclusive and self share of samples. py-spy is a developer tool, not a project
dependency: without it the profile is simply absent (and the result says so).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def _py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


class Profile:
    def __init__(self, *, pid: int, out: Path) -> None:
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        exe = _py_spy()
        if exe is None:
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--nonblocking",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self, top: int = 15) -> dict[str, Any]:
        if self.proc is None:
            return {"available": False, "note": "py-spy not installed"}
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if not self.out.exists():
            return {"available": False, "note": "py-spy wrote no profile"}
        return {"available": True, "file": str(self.out), **summarise(self.out, top=top)}


def _short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    name, _, where = frame.partition(" (")
    file = where.split(":")[0].rsplit("/", 1)[-1]
    return f"{name} ({file})" if file else name


def summarise(path: Path, *, top: int = 15) -> dict[str, Any]:
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [
            _short(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))
        ]
        if not frames:
            continue
        total += n
        for f in set(frames):
            inclusive[f] += n
        self_time[frames[-1]] += n

    def pct(c: Counter[str]) -> list[tuple[str, float]]:
        return [(f, round(100.0 * n / total, 1)) for f, n in c.most_common(top)] if total else []

    return {"samples": total, "top_inclusive_pct": pct(inclusive), "top_self_pct": pct(self_time)}
