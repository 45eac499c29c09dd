"""Hex HMAC-SHA256 request signatures (pure): Meta's ``X-Hub-Signature-256`` and our own.

Meta signs every webhook POST with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
raw body keyed by the app secret>``. Our own webhooks (X filtered-stream relay, forum, email
gateway, chat) sign ``"<timestamp>.<body>"`` the same way in ``X-Signature-256``, with the
Unix time of the call in ``X-Signature-Timestamp``: the timestamp is covered by the
signature, so a captured call cannot be replayed outside the replay window.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "x-signature-256"
TIMESTAMP_HEADER = "x-signature-timestamp"
# A Unix time in seconds has at most 11 digits for the next few thousand years.
MAX_TIMESTAMP_DIGITS = 11


def hex_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def timestamped_signature(secret: str, timestamp: int, body: bytes) -> str:
    """What our own senders put in X-Signature-256 for a call made at ``timestamp``."""
    return hex_signature(secret, f"{timestamp}.".encode() + body)


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


def timestamped_signature_problem(
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: float,
    window_seconds: int,
) -> str | None:
    """Why a call to one of our own webhooks is refused, or None when it is valid and fresh.

    The timestamp must be within ``window_seconds`` of ``now`` either way (clocks drift).
    """
    if not timestamp:
        return f"missing {TIMESTAMP_HEADER} header"
    stamp = timestamp.strip()
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > MAX_TIMESTAMP_DIGITS:
        return f"{TIMESTAMP_HEADER} must be a Unix time in seconds"
    if abs(now - int(stamp)) > window_seconds:
        return f"{TIMESTAMP_HEADER} is more than {window_seconds} s away from now (stale call)"
    if not signature:
        return f"missing {SIGNATURE_HEADER} header"
    expected = timestamped_signature(secret, int(stamp), body)
    if not hmac.compare_digest(signature.strip().lower().encode(), expected.encode()):
        return f"{SIGNATURE_HEADER} does not match {TIMESTAMP_HEADER} and the body"
    return None
