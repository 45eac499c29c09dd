"""Hex HMAC-SHA256 request signatures (pure): Meta's ``X-Hub-Signature-256`` and our own.

Meta signs every webhook POST with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
raw body keyed by the app secret>``; the forum, email and chat webhooks use the same scheme
in ``X-Signature-256`` with their own secrets.
"""

from __future__ import annotations

import hashlib
import hmac


def hex_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hex_signature_problem(
    secret: str, body: bytes, header: str | None, header_name: str
) -> str | None:
    """Why the request's signature is refused, or None when it is valid."""
    if not header:
        return f"missing {header_name} header"
    if not hmac.compare_digest(
        header.strip().lower().encode(), hex_signature(secret, body).encode()
    ):
        return f"{header_name} does not match the body"
    return None
