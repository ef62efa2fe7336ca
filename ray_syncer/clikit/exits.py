"""The exit codes of every ``ray-syncer`` command, defined once, and the ``--help`` epilog.

Why it exists: scripts branch on these codes (``ray-syncer diff ... || page``),
so each has one meaning across commands, and ``--help`` prints the ones a
command uses next to examples of it (``describe``).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    NOT_READY = 1  # not in sync, aborted, invalid manifest: the answer is "no"
    USAGE = 2  # a bad flag or value, or a cluster/kubeconfig/object that cannot be read
    REFUSED = 3  # failover: a safety check refuses (nothing was written)


MEANING: dict[Exit, str] = {
    Exit.OK: "success (in sync; the failover was done or would proceed)",
    Exit.NOT_READY: "not in sync / aborted / invalid (the answer is no; nothing is broken)",
    Exit.USAGE: "usage error or a cluster, kubeconfig or object that cannot be read",
    Exit.REFUSED: "refused: a failover safety check says no (nothing was written)",
}


def codes(*which: Exit, **wording: str) -> dict[str, str]:
    """A command's subset of the shared table; ``wording`` (by name, ``OK=...``) says what a
    code means for this command in particular."""
    return {str(int(c)): wording.get(c.name, MEANING[c]) for c in which}


def describe(
    parser: argparse.ArgumentParser, *, examples: Sequence[str], exit_codes: Mapping[str, str]
) -> None:
    """Give a subcommand's ``--help`` an Examples and an Exit codes section.

    Set on the parser the router made, so the router needs to know nothing of it.
    """
    lines = ["examples:", *(f"  {e}" for e in examples), "", "exit codes:"]
    lines += [f"  {code:<6} {meaning}" for code, meaning in exit_codes.items()]
    parser.epilog = "\n".join(lines)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
