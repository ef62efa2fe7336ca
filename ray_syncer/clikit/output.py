"""``-o table|wide|yaml|json``: one flag and one serialiser for every command that prints.

Why it exists: people read tables, automation reads JSON or YAML; every command
offers the same four names (``wide``: the table with every name and column, no
``(+N)`` truncation) and serialises the same way. A command renders its table
itself; for ``yaml``/``json`` it hands ``emit`` plain data.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import orjson
import yaml

FORMATS = ("table", "wide", "yaml", "json")
STRUCTURED = ("yaml", "json")


def output_type(allowed: Sequence[str], aliases: dict[str, str] | None = None) -> Any:
    """An argparse ``type``: case-insensitive, old names mapped through ``aliases``."""

    def parse(text: str) -> str:
        value = (aliases or {}).get(text.lower(), text.lower())
        if value not in allowed:
            raise argparse.ArgumentTypeError(
                f"invalid output format {text!r} (choose from {', '.join(allowed)})"
            )
        return value

    parse.__name__ = "output format"
    return parse


def add_output_flag(
    parser: argparse.ArgumentParser,
    *,
    formats: Sequence[str] = FORMATS,
    default: str = "table",
    aliases: dict[str, str] | None = None,
    help: str | None = None,
) -> None:
    parser.add_argument(
        "-o", "--output", type=output_type(formats, aliases), default=default,
        metavar="|".join(formats),
        help=help or f"output format (default {default}); yaml and json are for automation",
    )


def print_json(data: Any, file: TextIO | None = None) -> None:
    out = file or sys.stdout
    out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def print_yaml(data: Any, file: TextIO | None = None) -> None:
    # Through JSON first: the same plain types as -o json (no Python tags, tuples as lists).
    plain = orjson.loads(orjson.dumps(data))
    (file or sys.stdout).write(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True))


def emit(data: Any, fmt: str, file: TextIO | None = None) -> None:
    """Print ``data`` as ``fmt`` (``yaml`` or ``json``)."""
    if fmt == "yaml":
        print_yaml(data, file)
    elif fmt == "json":
        print_json(data, file)
    else:
        raise ValueError(f"emit: {fmt!r} is not a structured format")
