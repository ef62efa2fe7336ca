"""``ray-syncer failover``: promote the standby, planned or emergency, and fence the old active.

Why it exists: flipping ``suspend`` by hand on two clusters is the most
dangerous moment of DR. This command does it in a safe order and prints a
transcript of every step; ``--dry-run`` prints what it would do and writes
nothing. Both take their decision from one plan: ``dr.survey`` reads,
``dr.plan`` decides (and refuses), ``dr.promote`` carries it out. This module
is the command line around them.

Planned (both clusters reachable), for a push-mode KRMSyncer X living in the
active cluster A (``--kubeconfig``/``--context``) and writing into the standby
B (``--peer-kubeconfig``, default: X's kubeconfig Secret):

1. read X on A, and the reverse syncer Y on B (``--peer-name``, default X's
   name), or check we can create it (``--peer-secret`` / ``--peer-secret-from-file``);
2. wait until B has caught up (``dr.compare`` clean) or ``--timeout`` (then
   report and stop, changing nothing, unless ``--force``). We wait *before*
   suspending: a suspended syncer drains nothing, so suspending first would
   freeze the gap instead of closing it. Stop application writes on A first;
3. suspend X and wait for its operator to confirm (``Suspended=True``);
4. check again: still in sync (else un-suspend X and stop, unless ``--force``);
5. activate Y (un-suspend it, or create it from X with source and destination
   swapped), with ``conflictPolicy: Adopt`` so the objects that originated on A
   are taken over, and the fencing markers (``reverse-of``, a new
   ``failover-epoch``) that ``ray_syncer.fencing`` reads;
6. record the event on both KRMSyncers (annotation ``last-failover`` + Events).

Emergency (``--emergency``, A unreachable): only step 5 on B, for an existing Y
(X's spec cannot be read). The new epoch is what fences X: when A comes back,
its operator finds Y active, marked reverse-of X with a newer epoch, and X
reports ``Ready=False SplitBrain`` instead of writing A's stale data into B.
Failback is the same command run the other way round.

Exit codes (``clikit.exits``): 0 done / would proceed, 1 aborted / not caught
up, 2 usage or read error, 3 refused by a safety check (nothing written).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from ray_syncer.clikit.exits import Exit, codes, describe
from ray_syncer.clikit.flags import add_peer_flags, alias, resolve_namespace, seconds
from ray_syncer.clikit.output import STRUCTURED, add_output_flag, emit
from ray_syncer.dr.clusters import DrError, add_cluster_args, load_peer, load_user
from ray_syncer.dr.plan import Plan, Request
from ray_syncer.dr.promote import FailoverAborted, FailoverRefused, Transcript, execute
from ray_syncer.dr.report import console, render_plan
from ray_syncer.dr.survey import plan_failover
from ray_syncer.kube.client import ApiError, TransportError
from ray_syncer.kube.config import ClusterConfig

__all__ = ["FailoverAborted", "FailoverRefused", "Request", "Transcript", "configure", "run",
           "run_failover"]
EXAMPLES = (
    "ray-syncer failover app -n shop --kubeconfig alpha.yaml --peer-kubeconfig beta.yaml --dry-run",
    "ray-syncer failover app -n shop --context alpha --dry-run -o yaml",
    "ray-syncer failover app -n shop --kubeconfig alpha.yaml --peer-kubeconfig beta.yaml \\",
    "    --peer-secret-from-file alpha-for-beta.yaml --timeout 600",
    "ray-syncer failover app -n shop --emergency --kubeconfig alpha.yaml --peer-kubeconfig beta.yaml",
    "ray-syncer failover app -n shop --kubeconfig beta.yaml --peer-kubeconfig alpha.yaml   # failback",
)
# Old spelling -> (dest, new spelling); hidden, warned about, removed in the next release.
OLD_FLAGS = {
    "--standby-kubeconfig": ("peer_kubeconfig", "--peer-kubeconfig"),
    "--standby-context": ("peer_context", "--peer-context"),
    "--reverse-name": ("peer_name", "--peer-name"),
    "--reverse-secret": ("peer_secret", "--peer-secret"),
    "--reverse-kubeconfig": ("peer_secret_from_file", "--peer-secret-from-file"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the active KRMSyncer (push mode, in the active cluster)")
    add_cluster_args(parser, what="the active cluster, where the KRMSyncer lives")
    add_peer_flags(parser, what="the standby (needed with --emergency)")
    parser.add_argument("--peer-name", default=None, help="the standby's KRMSyncer (default: same name)")
    parser.add_argument("--peer-secret", default=None, metavar="NAME",
                        help="existing Secret on the standby with a kubeconfig for the active cluster "
                        "(used when the standby's KRMSyncer must be created)")
    parser.add_argument("--peer-secret-from-file", default=None, metavar="KUBECONFIG",
                        help="kubeconfig with which the standby reaches the active cluster; stored "
                        "in a Secret on the standby when its KRMSyncer must be created")
    for old, (dest, new) in OLD_FLAGS.items():
        alias(parser, old, dest=dest, use=new)
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (writes, fencing epoch, readiness, refusals); write nothing")
    parser.add_argument("--timeout", type=seconds, default=300.0,
                        help="seconds to wait for catch-up (default 300)")
    parser.add_argument("--confirm-timeout", type=seconds, default=60.0,
                        help="seconds to wait for the operator to confirm the suspension (default 60)")
    parser.add_argument("--emergency", action="store_true", help="the active cluster is unreachable: promote the standby only")
    parser.add_argument("--force", action="store_true", help="proceed even when the standby has not caught up")
    parser.add_argument("--allow-kubeconfig-exec", action="store_true")
    add_output_flag(parser, help="table: the steps as they happen (the plan with --dry-run); "
                    "yaml/json: the plan and the transcript at the end (steps go to stderr)")
    describe(parser, examples=EXAMPLES, exit_codes=codes(
        Exit.OK, Exit.NOT_READY, Exit.USAGE, Exit.REFUSED,
        OK="done, nothing to do, or (--dry-run) it would proceed now",
        NOT_READY="aborted: the standby did not catch up, nothing changed (--dry-run: not caught "
        "up now, it would wait)",
        REFUSED="refused by a safety check, nothing written (--dry-run: it would refuse)"))


async def run_failover(
    *, active: ClusterConfig | None, standby: ClusterConfig | None, request: Request,
    emergency_mode: bool, log: Transcript,
) -> int:
    """Plan, then carry the plan out (``FailoverRefused`` when the plan refuses)."""
    plan, standby = await plan_failover(active=active, standby=standby, req=request,
                                        emergency=emergency_mode)
    return await execute(plan, active=active, standby=standby, log=log)


def _request(args: argparse.Namespace, home: ClusterConfig | None) -> Request:
    reverse_text = None
    if args.peer_secret_from_file:
        with open(args.peer_secret_from_file, encoding="utf-8") as fh:
            reverse_text = fh.read()
    return Request(
        namespace=resolve_namespace(args, home) or "default", name=args.name,
        reverse_name=args.peer_name or args.name, reverse_secret=args.peer_secret,
        reverse_kubeconfig=reverse_text, timeout_s=args.timeout,
        confirm_timeout_s=args.confirm_timeout, force=args.force,
        allow_exec=args.allow_kubeconfig_exec,
    )


def _active(args: argparse.Namespace) -> ClusterConfig | None:
    """The active cluster's config; in an emergency it may be unloadable (None)."""
    try:
        return load_user(args.kubeconfig, args.context)
    except DrError:
        if not args.emergency:
            raise
        return None


def run(args: argparse.Namespace) -> int:
    structured = args.output in STRUCTURED
    con = console(sys.stderr if structured else None)
    log = Transcript(lambda line: con.print(line, markup=False))
    plan: Plan | None = None  # kept for -o yaml|json also when carrying it out fails
    try:
        active = _active(args)
        standby = load_peer(args)
        req = _request(args, active or standby)
        plan, standby = asyncio.run(plan_failover(active=active, standby=standby, req=req,
                                                  emergency=args.emergency))
        if args.dry_run:
            code = plan.verdict()[0]
        else:
            code = Exit(asyncio.run(execute(plan, active=active, standby=standby, log=log)))
        problem = None
    except FailoverAborted as exc:
        code, problem = Exit.NOT_READY, f"failover aborted: {exc}"
    except FailoverRefused as exc:
        code, problem = Exit.REFUSED, f"failover refused: {exc}"
    except (DrError, OSError) as exc:
        code, problem = Exit.USAGE, f"error: {exc}"
    except (ApiError, TransportError) as exc:
        code, problem = Exit.USAGE, f"error: {type(exc).__name__}: {exc}"
    if problem:
        con.print(problem, markup=False)
    if structured:
        emit({"dryRun": args.dry_run, "plan": plan.to_json() if plan else None,
              "transcript": log.lines, "error": problem, "exitCode": int(code)}, args.output)
    elif args.dry_run and plan is not None:
        render_plan(plan, con, wide=args.output == "wide")
    return int(code)
