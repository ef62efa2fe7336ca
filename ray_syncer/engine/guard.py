"""The delete-storm guard: a relist never mass-deletes (docs/design.md §4, invariant 2).

Why it exists: a source that suddenly lists far fewer objects (a restored
backup, a wrong namespace, an operator pointed at the wrong cluster) looks,
object by object, exactly like a wave of deletes. When a complete list would
delete more than ``min`` owned copies *and* more than ``fraction`` of them, the
guard trips: the shard deletes none of them, keeps reporting why (status and
a condition a person can act on), and clears by itself once a list is normal
again (the source restored, or the guard raised). Watch DELETED events are
deletes a user made one by one; they do not pass through here.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class DeleteGuard:
    def __init__(self, *, fraction: float, min_objects: int, name: str) -> None:
        self.fraction = fraction
        self.min_objects = min_objects
        self.name = name
        self.tripped: tuple[int, int] | None = None  # (would delete, owned) while tripped

    def allows(self, would_delete: int, owned: int) -> bool:
        """Whether a relist may delete ``would_delete`` of ``owned`` copies; trips if not."""
        if would_delete > self.min_objects and would_delete > self.fraction * owned:
            if self.tripped is None:
                log.warning("shard %s: delete-storm guard tripped (%d of %d owned objects would "
                            "go)", self.name, would_delete, owned)
            self.tripped = (would_delete, owned)
            return False
        self.tripped = None
        return True

    @property
    def message(self) -> str:
        if self.tripped is None:
            return ""
        n, total = self.tripped
        return (f"delete-storm guard tripped: a relist would delete {n} of {total} owned "
                "objects; deletes are paused (restore the source, or raise the guard)")
