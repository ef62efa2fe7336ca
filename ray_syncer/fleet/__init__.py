"""The fleet: shard hosts, the supervisor that keeps them as desired, and Ray under both.

Below the controller (``operator/``), above the engine. The logic is plain
asyncio and runs without Ray: ``plan`` (what to start, stop, pack),
``supervisor`` (the loop that carries a plan out, and ``Fleet``, all the
operator holds of it) and ``host`` (the shards of one process). Ray is
confined to ``actors`` (the actor wrappers), ``local`` (joining, starting,
probing and stopping a Ray) and ``testing`` (a multi-node Ray on one machine,
for tests and benchmarks only).
"""
