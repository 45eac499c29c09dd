"""X Account Activity webhook security (pure): the CRC challenge and request signatures.

X signs each POST with ``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256 of the
body keyed by the app's consumer secret>`` and checks the webhook with a GET carrying a
``crc_token``, to be answered with the same HMAC of the token.

Both use the same HMAC, so answering any token would sign any body: a JSON "token" would
come back as a valid signature of that JSON as a webhook body. Only plain tokens are
answered: short, of base64 / base64url characters (X sends a random opaque string), which
can never form a JSON object or array.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

MAX_CRC_TOKEN_LENGTH = 256
CRC_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=]+")


def request_signature(secret: str, message: bytes) -> str:
    """What X puts in x-twitter-webhooks-signature (and answers a CRC token with)."""
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def crc_token_problem(crc_token: str) -> str | None:
    """Why a CRC token is not answered, or None when it is a plain token."""
    if not crc_token:
        return "crc_token is empty"
    if len(crc_token) > MAX_CRC_TOKEN_LENGTH:
        return f"crc_token is longer than {MAX_CRC_TOKEN_LENGTH} characters"
    if not CRC_TOKEN.fullmatch(crc_token):
        return "crc_token may hold only letters, digits and -_+/="
    return None


def crc_response(secret: str, crc_token: str) -> dict[str, str]:
    """The body answering X's CRC challenge (for a token ``crc_token_problem`` accepts)."""
    return {"response_token": request_signature(secret, crc_token.encode())}


def signature_problem(secret: str, body: bytes, header: str | None) -> str | None:
    """Why the request's signature is refused, or None when it is valid."""
    if not header:
        return "missing x-twitter-webhooks-signature header"
    if not hmac.compare_digest(header.strip(), request_signature(secret, body)):
        return "x-twitter-webhooks-signature does not match the body"
    return None
