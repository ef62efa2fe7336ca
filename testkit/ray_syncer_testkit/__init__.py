"""An in-memory Kubernetes API server for tests, demos and benchmarks.

``from ray_syncer_testkit import ApiServer`` gives a server that speaks real
HTTP(S) to the official ``kubernetes`` client, kubectl and ray_syncer.kube:
discovery, CRUD with resourceVersions, watch, server-side apply, CRDs, the
status subresource, bearer-token auth and fault injection. See
docs/test-server.md for what it emulates and where it deviates.
"""

from .errors import StatusError
from .faults import Faults
from .http import RequestRecord
from .server import ApiServer
from .threaded import ThreadedApiServer, start_in_thread

__all__ = ["ApiServer", "Faults", "RequestRecord", "StatusError", "ThreadedApiServer", "start_in_thread"]
