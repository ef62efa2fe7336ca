"""The two ways a request to a cluster fails, and how to say so without leaking secrets.

Why it exists: every layer that talks to a cluster (the engine, the operator,
the DR tools) decides what to do by the kind of failure, and reports it in
status conditions, Events and logs. ``ApiError`` is the server's answer (its
``kind: Status`` body, with ``retry_after``); ``TransportError`` is no answer
at all. :func:`describe_error` is the one short, secret-free wording of either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["HTTP_REASONS", "ApiError", "TransportError", "describe_error", "error_from_response"]

HTTP_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_MAX_MESSAGE = 2000


class ApiError(Exception):
    """A non-2xx answer from the API server, parsed from its ``kind: Status`` body."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str = "",
        *,
        retry_after: float | None = None,
        causes: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.causes: list[dict[str, Any]] = causes or []

    def __repr__(self) -> str:
        return (
            f"ApiError(status={self.status}, reason={self.reason!r}, message={self.message!r}, "
            f"retry_after={self.retry_after})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only fields survive pickling (errors cross the Ray boundary).
        return (
            _rebuild_api_error,
            (self.status, self.reason, self.message, self.retry_after, self.causes),
        )

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500

    @property
    def invalid(self) -> bool:
        return self.status in (400, 422)

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def unauthorized(self) -> bool:
        return self.status == 401


def _rebuild_api_error(
    status: int, reason: str, message: str, retry_after: float | None, causes: list[dict[str, Any]]
) -> ApiError:
    return ApiError(status, reason, message, retry_after=retry_after, causes=causes)


class TransportError(Exception):
    """The request did not get an HTTP answer: refused, reset, timed out, TLS failure.

    Always retryable. The message names the method, path and cause, never credentials.
    """


def error_from_response(status: int, body: bytes, headers: Mapping[str, str]) -> ApiError:
    reason = HTTP_REASONS.get(status, "InternalError" if status >= 500 else "Unknown")
    message = ""
    causes: list[dict[str, Any]] = []
    retry_after: float | None = None
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        reason = doc.get("reason") or reason
        message = str(doc.get("message") or "")
        details = doc.get("details") or {}
        if isinstance(details, dict):
            causes = [c for c in details.get("causes") or [] if isinstance(c, dict)]
            if details.get("retryAfterSeconds"):
                retry_after = float(details["retryAfterSeconds"])
    elif body:
        message = body[:_MAX_MESSAGE].decode("utf-8", "replace").strip()
    header = headers.get("Retry-After")
    if header:
        with contextlib.suppress(ValueError):
            retry_after = max(0.0, float(header))
    return ApiError(status, reason, message[:_MAX_MESSAGE], retry_after=retry_after, causes=causes)


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description of an API or transport error."""
    if isinstance(exc, ApiError):
        text = f"{exc.status} {exc.reason}: {exc.message}" if exc.message else str(exc)
        return text[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
