"""ray-syncer: KRMSyncer rebuilt in Python on Ray.

A Kubernetes operator for active-passive disaster recovery: it mirrors the
resources named by ``KRMSyncer`` objects from a source cluster to a destination
cluster. See README.md for usage and docs/design.md for the design.
"""

from __future__ import annotations


def _version() -> str:
    """The version of the installed distribution: pyproject.toml's ``version``, its one home.

    From a checkout that was never installed (``python -m`` from the source tree), it is read
    from pyproject.toml beside the package; "0+unknown" if neither exists.
    """
    from importlib import metadata

    try:
        return metadata.version("ray-syncer")
    except metadata.PackageNotFoundError:
        pass
    import re
    from pathlib import Path

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        found = re.search(r'^version = "([^"]+)"$', pyproject.read_text(), re.M)
    except OSError:
        found = None
    return found.group(1) if found else "0+unknown"


__version__ = _version()

API_GROUP = "syncer.gkelabs.io"
API_VERSION = "v1alpha1"
KIND = "KRMSyncer"
PLURAL = "krmsyncers"
FIELD_MANAGER = "krm-syncer"
