"""Writes docs/cli.md from the parsers themselves: every subcommand's --help, as a user sees it.

    python hack/cli_docs.py > docs/cli.md

tests/test_cli_docs.py fails when docs/cli.md is not what this prints, so the reference cannot
drift from the flags.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

HEAD = """# The `ray-syncer` command line

Every subcommand's `--help`, as it prints it (this page is generated from the parsers by
`python hack/cli_docs.py > docs/cli.md`, and a test keeps it current). The conventions are
kubectl's: `--kubeconfig` and `--context` choose the cluster you talk to, `-n` defaults to the
context's namespace, `-A` lists across namespaces, `--peer-kubeconfig` and `--peer-context`
choose the other cluster of the pair, and `-o table|wide|yaml|json` chooses the output. A bad
flag or value exits 2 with the subcommand's usage.
"""


def help_of(argv: list[str]) -> str:
    from ray_syncer.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(argv)
    return out.getvalue().rstrip()


def render() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: the same width everywhere
    from ray_syncer.cli import SUBCOMMANDS

    parts = [HEAD, "```\n" + help_of(["--help"]) + "\n```\n"]
    for name in SUBCOMMANDS:
        parts.append(f"## `ray-syncer {name}`\n\n```\n{help_of([name, '--help'])}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
