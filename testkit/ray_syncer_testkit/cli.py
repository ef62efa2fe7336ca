"""``ray-syncer dev-cluster``: a standalone in-memory API server for manual use.

Starts an :class:`~.server.ApiServer`, writes its kubeconfig (``--kubeconfig-out``),
prints how to point kubectl at it and serves until SIGINT/SIGTERM. The CLI
router (ray_syncer/cli.py) calls :func:`configure` and :func:`run`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from .server import ApiServer


# The same layout and codes as every ray-syncer subcommand (ray_syncer.clikit.exits, which
# this distribution does not import).
EPILOG = """examples:
  ray-syncer dev-cluster --tls --kubeconfig-out dev.yaml
  KUBECONFIG=dev.yaml kubectl get namespaces

exit codes:
  0      stopped by Ctrl-C or SIGTERM
  2      usage error (a bad flag or value)"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--name", default="dev", help="cluster/context name in the kubeconfig (default dev)")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a generated CA")
    parser.add_argument("--kubeconfig-out", metavar="PATH", help="write the kubeconfig to PATH")
    parser.add_argument("--bookmark-interval", type=float, default=5.0,
                        help="seconds between watch BOOKMARK events (default 5)")


async def _serve(args: argparse.Namespace) -> int:
    server = await ApiServer.start(name=args.name, tls=args.tls, host=args.host, port=args.port,
                                   bookmark_interval=args.bookmark_interval)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if args.kubeconfig_out:
            path = server.write_kubeconfig(Path(args.kubeconfig_out))
            print(f"in-memory cluster {args.name!r} serving at {server.url}", flush=True)
            print(f"kubeconfig written to {path} (it contains the admin token)", flush=True)
            print(f"  export KUBECONFIG={path.resolve()}", flush=True)
            print("  kubectl get namespaces", flush=True)
        else:
            print(f"in-memory cluster {args.name!r} serving at {server.url}", flush=True)
            print("kubeconfig (save it to a file and point KUBECONFIG at it):", flush=True)
            print(server.kubeconfig(), flush=True)
        if not args.tls:
            print("note: kubectl sends bearer tokens only over https; start with --tls to use kubectl",
                  flush=True)
        print("kubectl commands that validate client-side need --validate=false (no OpenAPI served)",
              flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        await stop.wait()
    finally:
        await server.stop()
    print("stopped", file=sys.stderr, flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_serve(args))
