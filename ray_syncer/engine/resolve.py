"""A shard's first step: wait until both clusters serve its kind.

Why it exists: a custom resource's CRD may be missing on either side (not yet
installed on the standby, removed from the source); a shard must then say so
(``KindMissing``, naming the side and asking whether the CRD is installed) and
keep trying with backoff, never fail. Discovery errors are retried the same
way and reported as ``Degraded``.
"""

from __future__ import annotations

from collections.abc import Callable

from ray_syncer.engine.clock import Clock
from ray_syncer.engine.options import EngineOptions
from ray_syncer.engine.ratelimit import Backoff
from ray_syncer.engine.spec import ShardSpec, ShardState
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo, TransportError
from ray_syncer.kube.errors import describe_error


async def resolve_kind(
    spec: ShardSpec, *, source: KubeClient, dest: KubeClient, options: EngineOptions,
    clock: Clock, report: Callable[[ShardState, str | None], None],
) -> tuple[ResourceInfo, ResourceInfo]:
    """(source, destination) ``ResourceInfo`` of the shard's kind, once both serve it.

    ``report(state, message)`` says where it is (``message`` None: keep the last one).
    """
    gvk = f"{spec.group_version}/{spec.kind}"
    backoff = Backoff(base=options.retry_base_s, cap=options.retry_max_s)
    while True:
        report(ShardState.RESOLVING, None)
        try:
            src = await source.resolve(spec.group, spec.version, spec.kind)
            dst = await dest.resolve(spec.group, spec.version, spec.kind)
        except (ApiError, TransportError) as exc:
            report(ShardState.DEGRADED, f"discovery failed: {describe_error(exc)}")
            await clock.sleep(backoff.next())
            continue
        if src is not None and dst is not None:
            return src, dst
        side = "source" if src is None else "destination"
        delay = backoff.next()
        report(ShardState.KIND_MISSING,
               f"the {side} cluster does not serve {gvk} (is its CRD installed there?); "
               f"retrying in {delay:.0f}s")
        await clock.sleep(delay)
        (source if src is None else dest).invalidate_discovery()
