"""API keys with scopes, each bound to the agent it acts for, and the FastAPI dependency.

Configuration (``API_KEYS``): entries ``<key>=<scope>:<agent id>`` separated by ``;``, e.g.
``API_KEYS="k3y...=agent:marie.dupont;s3cr3t...=admin:ops-1"``.

- ``<key>``: a bearer token (RFC 6750 ``b64token``: letters, digits, ``-._~+/``, then
  optional ``=`` padding), at least ``MIN_KEY_LENGTH`` characters;
- ``<scope>``: ``read`` < ``agent`` < ``admin``; each implies the ones before it, so an
  agent can read what it needs to act and an admin can do everything;
- ``<agent id>``: who acts with this key; it is the actor recorded in replies, case
  history and audit, never anything derived from the key.

No key configured means every protected endpoint answers 401: an API is never open by
default. Errors name the entry's position, never the key.
"""

# No "from __future__ import annotations": FastAPI must see the dependency's parameter types.

import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from fastapi import HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from socialcrm.settings import ApiSettings

log = logging.getLogger(__name__)

Scope = Literal["read", "agent", "admin"]
# Ordered: a scope implies every scope before it.
SCOPES: tuple[Scope, ...] = get_args(Scope)
MIN_KEY_LENGTH = 12
MAX_KEY_LENGTH = 256
AGENT_ID_MAX_LENGTH = 64

_KEY = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_AGENT_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._@+\-]{{0,{AGENT_ID_MAX_LENGTH - 1}}}")
ENTRY_FORMAT = "<key>=<scope>:<agent id>"

_BEARER = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")
_API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The same API key in `X-API-Key`."
)


class InvalidApiKeys(ValueError):
    """A malformed ``API_KEYS`` setting; the message never holds a key."""


@dataclass(frozen=True)
class Principal:
    """Who called: the agent bound to the key and every scope the key grants."""

    agent_id: str
    scopes: frozenset[Scope]


def implied_scopes(scope: Scope) -> frozenset[Scope]:
    return frozenset(SCOPES[: SCOPES.index(scope) + 1])


def _digest(key: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison's time independent of the
    # presented key's length and content.
    return hashlib.sha256(key.encode()).digest()


def _parse_entry(position: int, entry: str) -> tuple[str, Principal]:
    where = f"API_KEYS entry {position}"
    key, sep, grant = entry.rpartition("=")
    scope, colon, agent_id = grant.partition(":")
    key, scope, agent_id = key.strip(), scope.strip(), agent_id.strip()
    if not sep or not colon:
        raise InvalidApiKeys(f"{where}: expected {ENTRY_FORMAT}")
    if not _KEY.fullmatch(key) or not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidApiKeys(
            f"{where}: the key must be {MIN_KEY_LENGTH} to {MAX_KEY_LENGTH} characters "
            "among letters, digits and -._~+/ (then optional = padding)"
        )
    if scope not in SCOPES:
        raise InvalidApiKeys(f"{where}: the scope must be one of {', '.join(SCOPES)}")
    if not _AGENT_ID.fullmatch(agent_id):
        raise InvalidApiKeys(
            f"{where}: the agent id must be 1 to {AGENT_ID_MAX_LENGTH} characters among "
            "letters, digits and ._@+- (starting with a letter or digit)"
        )
    return key, Principal(agent_id, implied_scopes(scope))


class ApiKeys:
    """The configured keys; looks a presented key up in constant time."""

    def __init__(self, entries: dict[str, Principal]) -> None:
        self._entries = [(_digest(key), principal) for key, principal in entries.items()]

    @classmethod
    def parse(cls, spec: str) -> "ApiKeys":
        """``"<key>=<scope>:<agent id>;..."``; raises ``InvalidApiKeys`` naming the entry."""
        entries: dict[str, Principal] = {}
        parts = [part.strip() for part in spec.split(";")]
        for position, entry in enumerate(filter(None, parts), start=1):
            key, principal = _parse_entry(position, entry)
            if key in entries:
                raise InvalidApiKeys(f"API_KEYS entry {position}: repeats an earlier key")
            entries[key] = principal
        return cls(entries)

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> "ApiKeys":
        """The service's keys; start-up stops with ``InvalidApiKeys`` on a bad entry."""
        keys = cls.parse(settings.api_keys.get_secret_value())
        if not keys:
            log.warning("no API keys configured (API_KEYS): every /v1 call answers 401")
        return keys

    def __len__(self) -> int:
        return len(self._entries)

    def agent_ids(self, scope: Scope) -> frozenset[str]:
        """The agents some key lets act with ``scope``: who a command may name."""
        return frozenset(p.agent_id for _, p in self._entries if scope in p.scopes)

    def authenticate(self, presented: str) -> Principal | None:
        """The key's principal, or None; every configured key is compared, none skipped."""
        digest = _digest(presented)
        found: Principal | None = None
        for candidate, principal in self._entries:
            if hmac.compare_digest(digest, candidate):
                found = principal
        return found

    def require(self, scope: Scope) -> Callable[..., Awaitable[Principal]]:
        """FastAPI dependency: the caller's principal when its key grants ``scope``.

        401 (with ``WWW-Authenticate: Bearer``) without a known key, 403 naming the
        missing scope. The key is read from ``Authorization: Bearer`` or ``X-API-Key``.
        """

        async def principal(
            bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
            api_key: Annotated[str | None, Security(_API_KEY_HEADER)],
        ) -> Principal:
            presented = api_key or (bearer.credentials if bearer else None)
            found = self.authenticate(presented.strip()) if presented else None
            if found is None:
                raise HTTPException(
                    401, "missing or unknown API key", headers={"WWW-Authenticate": "Bearer"}
                )
            if scope not in found.scopes:
                raise HTTPException(403, f"this API key lacks the {scope!r} scope")
            return found

        return principal


# OpenAPI ``responses`` of routes behind ``require`` (the body's schema is the shared
# error shape, see socialcrm.errors).
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key"},
    403: {"description": "The API key lacks the scope this endpoint needs"},
}
