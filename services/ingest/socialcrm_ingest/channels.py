"""The webhook channels: one row each, everything ingest knows of a channel (pure data).

A row says how the channel's calls are signed and with which settings, how its body is
decoded, which format normalizes it, and how its route is documented. Everything else is
generated from the rows: the routes (``webhooks.api``), the secrets required at start and
the signature check of each call (``security.doors``), the names ``INGEST_CHANNELS``
accepts (``webhooks.settings``). It imports nothing of ingest but the bodies'
schemas, so that both ``security`` and ``webhooks`` read it.

A new channel is a normalizer (``formats/``, registered in ``formats.registry``), one row
here with its body's schema (``bodies``), and its secret in ``webhooks.settings``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from socialcrm import strict_json
from socialcrm_ingest import bodies
from socialcrm_ingest.bodies import Schema


class SignatureScheme(Enum):
    """How a channel's calls are signed; ``security.doors`` checks each scheme."""

    # X: x-twitter-webhooks-signature, base64 HMAC-SHA256 of the body.
    X_BASE64 = "x-base64"
    # Meta: X-Hub-Signature-256, hex HMAC-SHA256 of the body.
    META_HEX = "meta-hex"
    # Ours: X-Signature-256, hex HMAC-SHA256 of "<X-Signature-Timestamp>.<body>", refused
    # outside the replay window and when replayed inside it.
    TIMESTAMPED_HEX = "timestamped-hex"


def decode_json_lines(body: bytes) -> Any:
    """One JSON value, or one per line (newline-delimited JSON, as the stream delivers it)."""
    try:
        return strict_json.loads(body)
    except strict_json.StrictJsonError:
        # Not UTF-8, or a repeated key: no way of cutting it into lines makes it JSON.
        raise
    except json.JSONDecodeError:
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) < 2:
            raise
        return [strict_json.loads(line) for line in lines]


def decode_raw(body: bytes) -> Any:
    return body


@dataclass(frozen=True)
class Body:
    """How a channel's body is decoded (a ValueError is a 400) and documented."""

    decode: Callable[[bytes], Any]
    media_types: tuple[str, ...]
    is_json: bool  # whether the docs list the 400 of a body that is not JSON


JSON = Body(strict_json.loads, ("application/json",), is_json=True)
JSON_LINES = Body(decode_json_lines, ("application/json", "application/x-ndjson"), is_json=True)
RFC822 = Body(decode_raw, ("message/rfc822",), is_json=False)


@dataclass(frozen=True)
class Webhook:
    """One webhook channel, served at ``POST /v1/webhooks/<channel>``."""

    channel: str  # its path, its name in INGEST_CHANNELS, label of the metrics and logs
    format: str  # key of formats.registry.NORMALIZERS
    shape: str  # what the body must be, for 422 answers
    # IngestSettings fields it needs (environment variables: upper case); the first signs.
    secrets: tuple[str, ...]
    signature: SignatureScheme
    summary: str  # the route's summary in the OpenAPI docs
    schema: Schema  # what the docs (and the fuzz tests) say of the body
    route: str  # the route's name, from which FastAPI derives its OpenAPI operationId
    body: Body = JSON

    @property
    def decode(self) -> Callable[[bytes], Any]:
        return self.body.decode


WEBHOOKS: Mapping[str, Webhook] = {
    webhook.channel: webhook
    for webhook in (
        Webhook(
            "x",
            "x-account-activity",
            "an X Account Activity payload",
            secrets=("x_consumer_secret",),
            signature=SignatureScheme.X_BASE64,
            summary="X Account Activity events (tweets, replies, quotes, direct messages)",
            schema=bodies.X_ACCOUNT_ACTIVITY,
            route="x_account_activity",
        ),
        Webhook(
            "x-stream",
            "x-filtered-stream",
            "X API v2 filtered-stream JSON",
            secrets=("x_stream_webhook_secret",),
            signature=SignatureScheme.TIMESTAMPED_HEX,
            summary="X API v2 filtered-stream messages (one JSON object, or one per line)",
            schema=bodies.X_FILTERED_STREAM,
            route="x_filtered_stream",
            body=JSON_LINES,
        ),
        Webhook(
            "meta",
            "meta",
            "a Meta Graph webhook payload",
            # The verify token answers the subscription handshake (GET).
            secrets=("meta_app_secret", "meta_verify_token"),
            signature=SignatureScheme.META_HEX,
            summary="Meta Graph webhooks: Page feed, Messenger, Instagram comments and mentions",
            schema=bodies.META,
            route="meta_events",
        ),
        Webhook(
            "forum",
            "forum",
            "a forum webhook payload",
            secrets=("forum_webhook_secret",),
            signature=SignatureScheme.TIMESTAMPED_HEX,
            summary="Forum / community posts and replies (signed, see the README)",
            schema=bodies.FORUM,
            route="forum_events",
        ),
        Webhook(
            "email",
            "email",
            "an RFC 5322 message",
            secrets=("email_webhook_secret",),
            signature=SignatureScheme.TIMESTAMPED_HEX,
            summary="Inbound email: one RFC 5322 message",
            schema=bodies.EMAIL,
            route="inbound_email",
            body=RFC822,
        ),
        Webhook(
            "chat",
            "chat",
            "a chat transcript",
            secrets=("chat_webhook_secret",),
            signature=SignatureScheme.TIMESTAMPED_HEX,
            summary="Live-chat transcripts: one interaction per visitor message",
            schema=bodies.CHAT,
            route="chat_transcript",
        ),
    )
}
