"""kubectl conventions shared by every ``ray-syncer`` subcommand.

Why it exists: ``status``, ``diff``, ``failover``, ``validate``, ``crd`` and
``run`` each declare flags and print results; these modules make them do it
one way: ``exits`` (the exit codes and the ``--help`` epilog that lists them
with examples), ``output`` (``-o table|wide|yaml|json``), and ``flags``
(``-n``/``-A`` defaulting like kubectl, the ``--peer-*`` scheme for the other
cluster with the old spellings as deprecated aliases, and value types that
turn a bad value into a clear usage error, exit 2). It imports nothing of the
package (floor 0 in tests/test_layout.py), so every command may use it, ``api``'s
``crd`` and ``validate`` too; and it is light: the router loads it for every command.
"""
