"""docs/cli.md is every subcommand's --help as the parsers print it today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_cli_reference_is_what_the_parsers_print() -> None:
    # A subprocess: the width (COLUMNS) must not leak into this process's other tests.
    out = subprocess.run([sys.executable, str(REPO / "hack" / "cli_docs.py")], capture_output=True,
                         text=True, check=True, cwd=REPO).stdout
    assert (REPO / "docs" / "cli.md").read_text() == out, (
        "docs/cli.md is stale: python hack/cli_docs.py > docs/cli.md")


def test_the_reference_names_every_subcommand_and_its_exit_codes() -> None:
    from ray_syncer.cli import SUBCOMMANDS

    text = (REPO / "docs" / "cli.md").read_text()
    assert [n for n in SUBCOMMANDS if f"## `ray-syncer {n}`" not in text] == []
    for name in ("status", "diff", "failover"):
        section = text.split(f"## `ray-syncer {name}`", 1)[1].split("\n## ", 1)[0]
        assert "exit codes:" in section and "examples:" in section, name
