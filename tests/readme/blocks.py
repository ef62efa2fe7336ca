"""The README's shell blocks, as a user copies them.

A block the suite runs literally is preceded by ``<!-- readme-test: TAG -->``; ``blocks(TAG)``
returns those blocks in order. ``commands()`` returns every command line of every shell block
(continuations joined, comments and shown output dropped), so a test can require that each one
is run somewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"(?:<!-- readme-test: (?P<tag>[\w-]+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```",
                    re.S)


@dataclass(frozen=True)
class Block:
    tag: str | None
    body: str


def shell_blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    return [Block(m["tag"], m["body"]) for m in _BLOCK.finditer(text) if m["lang"] == "bash"]


def blocks(tag: str, text: str | None = None) -> list[str]:
    return [b.body for b in shell_blocks(text) if b.tag == tag]


def command_lines(body: str) -> list[str]:
    """One entry per command: continuations joined, trailing comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    out = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(re.sub(r"\s+", " ", line))
    return out


def commands(text: str | None = None) -> list[tuple[str | None, str]]:
    return [(b.tag, c) for b in shell_blocks(text) for c in command_lines(b.body)]
