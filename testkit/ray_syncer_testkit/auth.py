"""Bearer-token authentication and a per-user authorization callback.

A token table maps each token to a :class:`User`. A request without a known
token is answered 401; a user whose ``allow`` callback returns False for
(verb, group, resource, namespace) gets 403 Forbidden, worded like RBAC's
denials. ``resource`` is the plural, with ``/status`` appended for the status
subresource, as in RBAC rules. http.py consults :class:`Authenticator` on
every request; the user name ends up in the request log.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from .errors import StatusError

Allow = Callable[[str, str, str, "str | None"], bool]
# Paths anyone may read, as the system:public-info-viewer role grants.
PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})


@dataclass(frozen=True)
class User:
    name: str
    allow: Allow | None = None

    def __repr__(self) -> str:  # never print the token table or callables
        return f"User({self.name!r})"


class Authenticator:
    def __init__(self) -> None:
        self._tokens: dict[str, User] = {}
        self.admin_token = secrets.token_urlsafe(24)
        self._tokens[self.admin_token] = User("admin")

    def add_user(self, token: str, *, user: str, allow: Allow | None = None) -> None:
        self._tokens[token] = User(user, allow)

    def remove_token(self, token: str) -> None:
        self._tokens.pop(token, None)

    def authenticate(self, authorization: str | None) -> User | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self._tokens.get(token.strip())

    @staticmethod
    def authorize(user: User, *, verb: str, group: str, resource: str, namespace: str | None,
                  name: str | None = None) -> None:
        if user.allow is None or user.allow(verb, group, resource, namespace):
            return
        qualified = f"{resource}.{group}" if group else resource
        named = f' "{name}"' if name else ""
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        raise StatusError(
            403,
            "Forbidden",
            f'{qualified}{named} is forbidden: User "{user.name}" cannot {verb} resource "{resource}" '
            f'in API group "{group}"{where}',
            details={"kind": resource.split("/")[0], **({"name": name} if name else {}),
                     **({"group": group} if group else {})},
        )
