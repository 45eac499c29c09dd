"""Rules of the CRM API (pure): API keys and their scopes, case status transitions."""

from __future__ import annotations

from collections.abc import Mapping

SCOPES = ("read", "agent", "admin")

# Where a case may go from each status; "closed" is final.
CASE_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "new": frozenset({"open"}),
    "open": frozenset({"pending_customer", "resolved"}),
    "pending_customer": frozenset({"open", "resolved"}),
    "resolved": frozenset({"open", "closed"}),
    "closed": frozenset(),
}


class InvalidApiKeys(ValueError):
    pass


def parse_api_keys(spec: str) -> dict[str, frozenset[str]]:
    """``"key1=read,agent;key2=admin"`` -> {key: scopes}; admin implies every scope."""
    keys: dict[str, frozenset[str]] = {}
    for entry in filter(None, (part.strip() for part in spec.split(";"))):
        key, sep, scopes_text = entry.partition("=")
        scopes = frozenset(filter(None, (s.strip() for s in scopes_text.split(","))))
        if not sep or not key.strip() or not scopes or not scopes <= set(SCOPES):
            raise InvalidApiKeys(f"bad CRM_API_KEYS entry {key.strip()[:4]}...: want key=scope,...")
        keys[key.strip()] = frozenset(SCOPES) if "admin" in scopes else scopes
    return keys


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


def can_move(current: str, target: str) -> bool:
    return target == current or target in CASE_TRANSITIONS.get(current, frozenset())
