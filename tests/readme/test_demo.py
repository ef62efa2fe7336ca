"""``make demo``, the README's first command: it passes, and says what it mirrored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.readme.blocks import README

REPO = README.parent
pytestmark = pytest.mark.ray


def test_make_demo_mirrors_create_update_and_delete() -> None:
    venv = REPO / ".venv"
    # `make demo` is run as written when this interpreter is the checkout's .venv (make test, CI);
    # from another environment, the command it runs.
    if Path(sys.prefix).resolve() == venv.resolve() and (venv / ".installed").exists():
        argv = ["make", "-s", "demo"]
    else:
        argv = [sys.executable, "-m", "ray_syncer", "demo"]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    for step in ("appears in the destination with key=value1", "the change shows in the destination",
                 "it is gone from the destination", "Demo passed"):
        assert step in out, out[-4000:]
