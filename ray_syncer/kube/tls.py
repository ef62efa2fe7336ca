"""TLS contexts built in memory from a cluster's TLS material (a ``ClusterConfig``).

Why this exists: kubeconfigs carry CA and client certificate material as data,
and key material should never be written to disk. ``config.py`` calls this to
reject unusable certificate data at load time (a precise ``KubeconfigError``),
and ``client.py`` calls it to build the context of its connection pool.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from typing import Protocol

__all__ = ["TlsMaterial", "TlsMaterialError", "ssl_context"]


class TlsMaterial(Protocol):
    """What a TLS context is made of; ``kube.config.ClusterConfig`` has it."""

    @property
    def server(self) -> str: ...
    @property
    def insecure_skip_tls_verify(self) -> bool: ...
    @property
    def ca_data(self) -> bytes | None: ...
    @property
    def client_cert_data(self) -> bytes | None: ...
    @property
    def client_key_data(self) -> bytes | None: ...


class TlsMaterialError(ValueError):
    """Certificate or key data that cannot be loaded (the message holds no material)."""


def ssl_context(config: TlsMaterial) -> ssl.SSLContext | None:
    """An in-memory TLS context for ``config`` (None for plain http)."""
    if not config.server.startswith("https://"):
        return None
    if config.insecure_skip_tls_verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif config.ca_data:
        # A kubeconfig CA replaces the system trust store, as with kubectl.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            ctx.load_verify_locations(cadata=config.ca_data.decode("ascii", "strict"))
        except (UnicodeDecodeError, ssl.SSLError):
            try:
                ctx.load_verify_locations(cadata=config.ca_data)  # DER
            except ssl.SSLError:
                raise TlsMaterialError(
                    "certificate-authority data is not a valid certificate"
                ) from None
    else:
        ctx = ssl.create_default_context()
    if config.client_cert_data and config.client_key_data:
        _load_client_cert(ctx, config)
    return ctx


def _load_client_cert(ctx: ssl.SSLContext, config: TlsMaterial) -> None:
    # Python's ssl module can only read a certificate chain from a file path. We
    # use an anonymous in-memory file (memfd, Linux) so the key never touches a
    # disk; elsewhere a private 0600 temp file that is deleted right after
    # load_cert_chain returns.
    assert config.client_cert_data is not None and config.client_key_data is not None
    pem = config.client_cert_data.rstrip(b"\n") + b"\n" + config.client_key_data
    memfd_create = getattr(os, "memfd_create", None)
    try:
        if memfd_create is not None and os.path.isdir("/proc/self/fd"):
            fd = memfd_create("krm-syncer-client-cert", 0)
            try:
                os.write(fd, pem)
                ctx.load_cert_chain(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
        else:
            fd, tmp = tempfile.mkstemp(prefix="krm-syncer-")
            try:
                os.write(fd, pem)
                os.close(fd)
                ctx.load_cert_chain(tmp)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
    except ssl.SSLError:
        raise TlsMaterialError("client certificate/key data is not a valid PEM pair") from None
