"""Flags every kubectl-shaped command shares, and argparse types that refuse bad values.

Why it exists: the same flag must mean the same thing everywhere.

* ``-n/--namespace`` defaults to the kubeconfig context's namespace (in a pod:
  the service account's), then ``default``, as kubectl does; ``-A`` lists all
  namespaces where listing makes sense. ``resolve_namespace`` applies that.
* The other cluster of a DR pair is always ``--peer-*``: ``--kubeconfig`` and
  ``--context`` are the cluster the named KRMSyncer lives in, ``--peer-kubeconfig``
  and ``--peer-context`` the other one. ``alias`` keeps an old spelling working,
  hidden from ``--help``, with a one-line deprecation warning on stderr.
* ``seconds``, ``seconds_at_least``, ``at_least`` and ``log_level`` are argparse types: a bad value is
  a usage error (exit 2) that names the flag, before anything runs.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEPRECATION = "warning: {old} is deprecated and will be removed in the next release; use {new}"


def add_namespace_flags(
    parser: argparse.ArgumentParser, *, what: str = "the KRMSyncer", all_namespaces: bool = False
) -> None:
    parser.add_argument(
        "-n", "--namespace", default=None,
        help=f"namespace of {what} (default: the kubeconfig context's namespace, else default)",
    )
    if all_namespaces:
        parser.add_argument("-A", "--all-namespaces", action="store_true",
                            help="list across all namespaces (overrides -n)")


def resolve_namespace(args: argparse.Namespace, config: Any) -> str | None:
    """The namespace to use: ``-n``, else the context's, else ``default``; None with ``-A``."""
    if getattr(args, "all_namespaces", False):
        return None
    return args.namespace or getattr(config, "namespace", None) or "default"


def add_kubeconfig_flags(parser: argparse.ArgumentParser, *, what: str) -> None:
    parser.add_argument("--kubeconfig", default=None,
                        help=f"kubeconfig of {what}; default: KUBECONFIG, else ~/.kube/config")
    parser.add_argument("--context", default=None, help="context in --kubeconfig")


def add_peer_flags(parser: argparse.ArgumentParser, *, what: str) -> None:
    parser.add_argument(
        "--peer-kubeconfig", default=None, metavar="FILE",
        help=f"kubeconfig of {what}; default: the one in the KRMSyncer's kubeconfig Secret",
    )
    parser.add_argument("--peer-context", default=None, help="context in --peer-kubeconfig")


class _DeprecatedAlias(argparse.Action):
    """An old spelling: stores into the new flag's ``dest``, warns once on stderr."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, use: str, **kw: Any) -> None:
        super().__init__(option_strings, dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                         **kw)
        self.use = use

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(DEPRECATION.format(old=option_string, new=self.use), file=sys.stderr)
        setattr(namespace, self.dest, values)


def alias(parser: argparse.ArgumentParser, old: str, *, dest: str, use: str) -> None:
    """Keep ``old`` working for one release as a hidden alias of the flag named ``use``."""
    parser.add_argument(old, dest=dest, action=_DeprecatedAlias, use=use)


def seconds_at_least(low: float) -> Callable[[str], float]:
    """An argparse type: a number of seconds, finite, more than 0 and at least ``low``.

    Plain numbers only, as these flags always took: a Go duration (``5m``) would need
    ``api.formats``, a floor above this one (tests/test_layout.py).
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value) or value <= 0 or value < low:
            raise argparse.ArgumentTypeError(f"{text!r}: must be at least {max(low, 0):g} seconds"
                                             + (" and more than 0" if low <= 0 else ""))
        return value

    parse.__name__ = "seconds"
    return parse


seconds = seconds_at_least(0.0)


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r}: must be >= {low}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def port(text: str) -> int:
    """A TCP port to listen on (0: any free port)."""
    value = at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is at most 65535")
    return value


def log_level(text: str) -> str:
    """A logging level name, any case (``info`` -> ``INFO``)."""
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"invalid log level {text!r} (choose from {', '.join(LOG_LEVELS)}, any case)"
        )
    return level
