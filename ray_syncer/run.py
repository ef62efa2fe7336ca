"""``ray-syncer run``: the operator process on Ray.

Why it exists: it is where the controller (``operator/``) meets the Ray
runtime (``fleet/``), and it owns the process lifecycle. It loads the
operator's own cluster config (in-cluster, ``KUBECONFIG`` or
``--kubeconfig``/``--context``), connects to Ray (``--ray-address``,
``RAY_ADDRESS``, or an embedded local Ray: ``fleet.local``), hands
``operator.serve`` the Ray fleet (``fleet.actors.RayBackend``), and on
SIGTERM/SIGINT/SIGHUP stops all shards (destination data stays) before exiting.

A stop always stops (``operator.stopper.Stopper``): the first signal starts the
stop and arms a watchdog at ``--stop-timeout``; a second one exits at once.
Every step is bounded: the metrics port is released first, Ray is probed
before the shards are stopped (a dead or unreachable Ray is skipped, not waited
on), ``ray.shutdown`` runs in a daemon thread, and a local Ray this process
started is killed to the last process. Exit codes: 0 clean stop, 1 a step
failed or ran out of time, 128+N a second signal N, 2 bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from ray_syncer.clikit.exits import Exit, codes, describe
from ray_syncer.operator import options as flags
from ray_syncer.operator.options import options_from_args
from ray_syncer.operator.serve import StopOutcome, serve
from ray_syncer.operator.stopper import Stopper

log = logging.getLogger("ray_syncer.operator")

__all__ = ["configure", "run"]

EXAMPLES = (
    "ray-syncer run                                   # in a pod: in-cluster config, local Ray",
    "ray-syncer run --kubeconfig alpha.yaml --cluster-name alpha --log-level debug",
    "ray-syncer run --ray-address auto -n shop        # join Ray; serve one namespace only",
)
EXIT_CODES = {
    **codes(Exit.OK, Exit.NOT_READY, Exit.USAGE, OK="a clean stop",
            NOT_READY="a stop step failed or ran out of time",
            USAGE="usage error (a bad flag or value) or an unloadable kubeconfig"),
    "128+N": "a second signal N (130 SIGINT, 143 SIGTERM): exited at once",
}


def configure(parser: argparse.ArgumentParser) -> None:
    flags.configure(parser)
    describe(parser, examples=EXAMPLES, exit_codes=EXIT_CODES)


def _stop_ray(local: Any, backend: Any, stopper: Stopper, outcome: StopOutcome) -> None:
    """Disconnect from Ray, bounded; end the local Ray this process started (never a joined one)."""
    problem = (
        backend.ray_problem if backend.probed else local.unavailable(min(1.0, stopper.left()))
    )
    grace = 2.0  # ray.shutdown asked them to exit: the dashboard's helpers take a moment
    if problem is None:
        if not local.disconnect(timeout=stopper.left(reserve=1.2)):
            outcome.fail("ray.shutdown", "did not finish in time; abandoned")
            grace = 0.0
    elif local.local_ray_down():
        log.info("stop: %s; nothing to shut down", problem)
        grace = 0.5  # its GCS and raylet can hang in their own shutdown
    else:
        outcome.fail("ray.shutdown", f"skipped: {problem}")
        grace = 0.0
    killed = local.kill_local_ray(grace=min(grace, stopper.left(reserve=0.3)))
    if killed:
        log.info("stop: killed what was left of the local Ray: %s", ", ".join(killed))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, args.log_level),  # validated by clikit.flags.log_level
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Ray's C++ failure-signal handler would take SIGTERM from the Stopper while ray.init runs
    # (and abort the process); this process handles its own signals. Set before Ray is imported.
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    from ray_syncer.fleet import actors, local
    from ray_syncer.kube.config import KubeconfigError, load_default

    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"{exc}", file=sys.stderr)
        return Exit.USAGE
    try:
        own_config = load_default(kubeconfig=args.kubeconfig, context=args.context)
    except KubeconfigError as exc:
        log.error("cannot load the operator's own cluster config: %s", exc.message)
        return Exit.USAGE
    stopper = Stopper(args.stop_timeout, on_abandon=local.kill_local_ray)
    stopper.install()
    outcome = StopOutcome()
    interrupted = False
    try:
        with stopper.starting():
            local.connect(args.ray_address, adopt_orphans=True)
            stopper.install()  # Ray's core worker set its own SIGTERM handler
    except (SystemExit, KeyboardInterrupt):
        # A signal during ray.init: Ray's SIGTERM handler raised SystemExit. Stop as for any signal.
        stopper.install()
        stopper.begin()
        interrupted = True
    backend = actors.RayBackend(
        actors.ActorSettings(
            shards_per_host=options.max_shards_per_actor,
            supervisor_resource=options.supervisor_resource or actors.HEAD_RESOURCE,
        )
    )

    async def main() -> None:
        stop = asyncio.Event()
        stopper.attach(asyncio.get_running_loop(), stop)
        await serve(options, backend=backend, own_config=own_config, stop=stop, outcome=outcome)

    try:
        if not interrupted and not stopper.signalled:
            asyncio.run(main())
    except Exception:
        log.exception("operator failed")
        outcome.problems.append("operator failed")
    stopper.begin()  # no-op after a signal; bounds the stop when the operator ended by itself
    _stop_ray(local, backend, stopper, outcome)
    code = 1 if outcome.problems else 0
    log.info("stopped (exit code %d)", code)
    stopper.exit(code)
