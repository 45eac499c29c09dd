"""The mail gateway's signed verdict on an email's sender (pure logic).

Anyone can write any From: an email's sender is only what the sender claims, unless the
receiving mail gateway checked the domain (DMARC, DKIM) and says so. The gateway (the MTA
that receives the brand's mail and posts each message to ``/v1/webhooks/email``) adds one
header to the message, after its own checks::

    X-SocialCRM-Mail-Verdict: dmarc=pass; dkim=pass; header.from=example.fr;
        header.d=example.fr; sig=<hex HMAC-SHA256>

``sig`` is the HMAC-SHA256, keyed with ``MAIL_GATEWAY_SECRET``, of the verdict before
``; sig=`` (its parts joined by ``"; "``), a line break, the From address (lower case), a
line break and the Message-ID (without its angle brackets). So a sender cannot write a
verdict (no secret), nor copy one from another message (another From or Message-ID).

The From is verified only with a verdict whose signature holds, whose ``header.from`` is the
From's domain, and that says ``dmarc=pass`` (DMARC aligns SPF or DKIM with that domain), or
``dkim=pass`` with ``header.d`` equal to that domain (aligned strictly). Anything else (no
verdict, no secret configured, a bad signature, another domain, several From addresses,
``fail``, ``none``...) leaves the sender unverified.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

VERDICT_HEADER = "X-SocialCRM-Mail-Verdict"
_SIGNATURE = "sig"


def verdict_signature(secret: str, verdict: str, address: str, message_id: str) -> str:
    """The hex HMAC-SHA256 a gateway writes after ``sig=`` for ``verdict`` (without it)."""
    signed = f"{verdict}\n{address.lower()}\n{message_id}".encode()
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signed_verdict(secret: str, verdict: str, address: str, message_id: str) -> str:
    """The header value a gateway writes: ``verdict``, then its signature."""
    return f"{verdict}; {_SIGNATURE}={verdict_signature(secret, verdict, address, message_id)}"


def _parts(value: str) -> tuple[str, dict[str, str], str] | None:
    """The signed text, its results by name and the signature; None when out of shape."""
    parts = [part.strip() for part in value.split(";")]
    parts = [part for part in parts if part]
    if len(parts) < 2 or not parts[-1].startswith(_SIGNATURE + "="):
        return None
    results: dict[str, str] = {}
    for part in parts[:-1]:
        name, equals, result = part.partition("=")
        if not equals or name.strip().lower() in results:
            return None
        results[name.strip().lower()] = result.strip().lower()
    return "; ".join(parts[:-1]), results, parts[-1][len(_SIGNATURE) + 1 :]


def _passes(results: dict[str, str], domain: str) -> bool:
    if results.get("header.from") != domain:
        return False
    dmarc = results.get("dmarc") == "pass"
    aligned_dkim = results.get("dkim") == "pass" and results.get("header.d") == domain
    return dmarc or aligned_dkim


def sender_verified(
    verdicts: Iterable[str], addresses: list[str], message_id: str, secret: str
) -> bool:
    """Whether the gateway vouches for the one From address (see the module's docstring)."""
    if not secret or len(addresses) != 1:
        return False
    address = addresses[0].lower()
    domain = address.rpartition("@")[2]
    for value in verdicts:
        parsed = _parts(" ".join(value.split()))
        if parsed is None:
            continue
        signed, results, signature = parsed
        expected = verdict_signature(secret, signed, address, message_id)
        if hmac.compare_digest(signature.encode(), expected.encode()) and _passes(results, domain):
            return True
    return False
