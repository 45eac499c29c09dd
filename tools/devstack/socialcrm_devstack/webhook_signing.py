"""How each sender signs a call to ingest's webhooks (pure): the networks' side of the door.

The local stack, the demo stream, the tests and the benchmarks sign as the real senders
do, so ingest runs with its signature checks on everywhere:

- X Account Activity: ``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256 of the
  body>`` keyed by the app's consumer secret;
- Meta: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`` keyed by the app
  secret;
- our own webhooks (X filtered-stream relay, forum, email gateway, chat):
  ``X-Signature-Timestamp: <unix seconds>`` and ``X-Signature-256: sha256=<hex
  HMAC-SHA256 of "<timestamp>.<body>">``, so a captured call cannot be replayed later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

from socialcrm_ingest.channels import WEBHOOKS, SignatureScheme


@dataclass(frozen=True)
class Door:
    """A webhook path's signing scheme and the environment variable holding its secret."""

    scheme: str  # "x", "meta" or "own"
    secret_env: str


# The local mail gateway's verdict secret (ingest's MAIL_GATEWAY_SECRET): the demo's emails
# come through a gateway that checked their senders, as a deployment's do.
LOCAL_MAIL_GATEWAY_SECRET = "local-mail-gateway-secret"

SCHEMES = {
    SignatureScheme.X_BASE64: "x",
    SignatureScheme.META_HEX: "meta",
    SignatureScheme.TIMESTAMPED_HEX: "own",
}
# One door per row of ingest's channels: a new channel is signed here without a line more.
DOORS: dict[str, Door] = {
    f"/v1/webhooks/{webhook.channel}": Door(SCHEMES[webhook.signature], webhook.secrets[0].upper())
    for webhook in WEBHOOKS.values()
}


def x_signature(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def hex_signature(secret: str, message: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def timestamped_signature(secret: str, timestamp: int, body: bytes) -> str:
    return hex_signature(secret, f"{timestamp}.".encode() + body)


def signed_headers(
    path: str, body: bytes, secrets: Mapping[str, str], *, now: float | None = None
) -> dict[str, str]:
    """The signature headers the sender of ``path`` puts on ``body``.

    ``secrets`` maps environment variable names (``FORUM_WEBHOOK_SECRET``...) to values;
    an unknown path or a missing secret gives no header (the call goes unsigned).
    """
    door = DOORS.get(path.split("?", 1)[0].rstrip("/"))
    secret = secrets.get(door.secret_env, "") if door else ""
    if door is None or not secret:
        return {}
    if door.scheme == "x":
        return {"x-twitter-webhooks-signature": x_signature(secret, body)}
    if door.scheme == "meta":
        return {"X-Hub-Signature-256": hex_signature(secret, body)}
    timestamp = int(time.time() if now is None else now)
    return {
        "X-Signature-Timestamp": str(timestamp),
        "X-Signature-256": timestamped_signature(secret, timestamp, body),
    }
