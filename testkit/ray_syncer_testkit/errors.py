"""Kubernetes ``Status`` error objects.

Every failure the test server reports travels as a :class:`StatusError`; the
HTTP layer (http.py) turns it into a ``kind: Status`` body with the code,
reason and message wording kube-apiserver uses, so clients that parse
``reason``/``details`` (the official client, ray_syncer.kube) see the same
thing they would see from a real cluster.
"""

from __future__ import annotations

from typing import Any


class StatusError(Exception):
    """An API error: HTTP ``code``, CamelCase ``reason``, human ``message``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if not self.reason:
            del body["reason"]  # kube-apiserver omits an empty reason (e.g. a 500 from a failed conversion)
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code  # last, as kube-apiserver writes a Status
        return body


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str | None, resource: str, group: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details.update(extra)
    return details


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        404,
        "NotFound",
        f'{_qualified(resource, group)} "{name}" not found',
        details=_details(name, resource, group),
    )


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        details=_details(name, resource, group),
    )


def conflict(resource: str, name: str, group: str = "", *, why: str | None = None) -> StatusError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
        details=_details(name, resource, group),
    )


def apply_conflict(conflicts: list[tuple[str, str]]) -> StatusError:
    """A 409 for a server-side apply that conflicts: ``conflicts`` are (manager, field path).

    ``manager`` is already rendered as kube-apiserver prints it (``"name"``, plus `` using v1``
    for an Update entry, `` with subresource "status"``). As in the apiserver the causes are
    ``{"reason": "FieldManagerConflict", "message": 'conflict with "m"', "field": ".data.a"}``
    and the message groups the paths by manager; the details carry nothing but the causes.
    """
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {m}", "field": p} for m, p in conflicts]
    if len(conflicts) == 1:
        m, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {m}: {p}"
    else:
        by_manager: dict[str, list[str]] = {}
        for m, p in conflicts:
            by_manager.setdefault(m, []).append(p)
        lines = []
        for m in sorted(by_manager):
            lines.append(f"conflicts with {m}:")
            lines += [f"- {p}" for p in by_manager[m]]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, details={"causes": causes})


def invalid(kind: str, name: str, group: str, causes: list[dict[str, str]]) -> StatusError:
    # The message lists each distinct error once (Go's ErrorList.ToAggregate de-duplicates).
    lines = list(dict.fromkeys(f"{c['field']}: {c['message']}" for c in causes))
    text = ", ".join(lines)
    if len(lines) > 1:
        text = "[" + text + "]"
    return StatusError(
        422,
        "Invalid",
        f'{_qualified(kind, group)} "{name}" is invalid: {text}',
        details=_details(name, kind, group, causes=causes),
    )


def field_invalid(field: str, value: Any, detail: str) -> dict[str, str]:
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {_render(value)}: {detail}",
        "field": field,
    }


def field_required(field: str, detail: str) -> dict[str, str]:
    message = f"Required value: {detail}" if detail else "Required value"
    return {"reason": "FieldValueRequired", "message": message, "field": field}


def field_too_long(field: str, limit: int) -> dict[str, str]:
    return {"reason": "FieldValueTooLong", "message": f"Too long: may not be more than {limit} bytes", "field": field}


def field_forbidden(field: str, detail: str) -> dict[str, str]:
    return {"reason": "FieldValueForbidden", "message": f"Forbidden: {detail}", "field": field}


def _render(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def forbidden(message: str, *, resource: str = "", name: str | None = None, group: str = "") -> StatusError:
    return StatusError(403, "Forbidden", message, details=_details(name, resource, group))


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str, accepted: list[str]) -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
    )


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def too_many_requests(retry_after: float) -> StatusError:
    seconds = max(1, round(retry_after))
    return StatusError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        details={"retryAfterSeconds": seconds},
        retry_after=retry_after,
    )


def internal_error(message: str = "an error on the server (\"injected fault\") has prevented the request from succeeding") -> StatusError:
    return StatusError(500, "InternalError", message, details={"causes": [{"message": message}]})


def service_unavailable(message: str = "the server is currently unable to handle the request") -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def for_code(code: int, *, retry_after: float) -> StatusError:
    """An injected fault's Status for an HTTP code (faults.py)."""
    if code == 429:
        return too_many_requests(retry_after)
    if code == 500:
        return internal_error()
    if code == 503:
        err = service_unavailable()
        err.retry_after = retry_after
        return err
    if code == 504:
        return StatusError(504, "Timeout", "the server was unable to return a response in the time allotted")
    if code == 409:
        return StatusError(409, "Conflict", "injected conflict")
    return StatusError(code, "InternalError", f"injected fault {code}")
