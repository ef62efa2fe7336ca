"""Disaster-recovery tooling: ``ray-syncer status``, ``diff`` and ``failover``.

These commands run from a laptop (or a CI job) with ordinary kubeconfigs and
talk to the clusters' API servers directly; none of them needs the operator
to be running. ``compare`` computes the DR-readiness report that ``diff``
prints and ``failover`` waits on; ``clusters`` loads the two sides of a
KRMSyncer; ``report`` renders tables.
"""
