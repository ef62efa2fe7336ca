"""The ``ray-syncer`` command line.

Each subcommand lives in its own module that defines ``configure(parser)`` and
``run(args) -> int``; this file only routes to them. Only the module of the
subcommand being run is imported: ``ray-syncer crd`` does not pay for Ray, and
``ray-syncer run`` never loads the in-memory test server behind ``dev-cluster``.
``demo`` and ``dev-cluster`` run on the test kit (``ray_syncer_testkit``), a
distribution of its own that a plain ``pip install ray-syncer`` does not bring:
without it they say so and how to get it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("ray_syncer.run", "run the operator (supervisor and shard actors on Ray)"),
    "demo": ("ray_syncer.demo", "live demo: two in-memory clusters, Ray, the operator, the walkthrough"),
    "crd": ("ray_syncer.api.crd", "print the KRMSyncer CustomResourceDefinition"),
    "validate": ("ray_syncer.api.validate", "validate KRMSyncer manifests and print the parsed spec"),
    "dev-cluster": ("ray_syncer_testkit.cli", "start an in-memory Kubernetes API server for manual use"),
    "status": ("ray_syncer.dr.status", "show KRMSyncer shards, lag, conflicts and conditions"),
    "diff": ("ray_syncer.dr.diff", "DR-readiness report: compare source and destination"),
    "failover": ("ray_syncer.dr.failover", "promote the standby (planned or emergency)"),
}
TESTKIT = "ray_syncer_testkit"
NEEDS_TESTKIT = ("demo", "dev-cluster")
TESTKIT_MISSING = (
    "ray-syncer {command}: needs the test kit (the in-memory Kubernetes API servers), which is "
    "not installed: pip install ray-syncer-testkit, or in a checkout `make install` "
    "(pip install ./testkit)"
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand's module is imported and configured."""
    parser = argparse.ArgumentParser(
        prog="ray-syncer",
        description="KRMSyncer on Ray: active-passive disaster recovery for Kubernetes.",
    )
    from ray_syncer import __version__

    parser.add_argument("--version", action="version", version=f"ray-syncer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module_name, _parser=sp)
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only a subcommand whose module is absent is tolerated; a broken import is not.
            if not exc.name or not (module_name + ".").startswith(exc.name + "."):
                raise
            sp.set_defaults(_missing=True)
            continue
        module.configure(sp)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    # The first word that is not an option (the top-level parser has only --help/--version).
    return next((a for a in argv if not a.startswith("-")), None)


def _have(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    parser = build_parser(command if command in SUBCOMMANDS else None)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # The subcommand's own usage, not the top-level one: that is the parser that lacks the flag.
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not args.command:
        parser.print_help()
        return 2
    if args.command in NEEDS_TESTKIT and not _have(TESTKIT):
        print(TESTKIT_MISSING.format(command=args.command), file=sys.stderr)
        return 2
    if getattr(args, "_missing", False):
        print(f"ray-syncer {args.command}: not available in this build", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
