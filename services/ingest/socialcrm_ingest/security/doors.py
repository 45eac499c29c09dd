"""What each webhook requires before its body is read as an event (pure: ``now`` is given).

Webhooks fail closed: an enabled channel without its secret keeps ingest from starting,
unless the local-insecure setting is on. Per call:

- X: ``x-twitter-webhooks-signature`` (base64 HMAC of the body, consumer secret);
- Meta: ``X-Hub-Signature-256`` (hex HMAC of the body, app secret);
- our own webhooks (X filtered-stream relay, forum, email gateway, chat):
  ``X-Signature-Timestamp`` within the replay window and ``X-Signature-256`` over
  ``"<timestamp>.<body>"``; the same signature twice inside the window is a replay.

X and Meta send no timestamp: their redeliveries are answered as duplicates by event id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from socialcrm_ingest.security.replay import RecentSignatures
from socialcrm_ingest.security.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    hex_signature_problem,
    timestamped_signature_problem,
)
from socialcrm_ingest.security.x_signatures import signature_problem

if TYPE_CHECKING:
    from socialcrm_ingest.webhooks.settings import IngestSettings

WEBHOOK_CHANNELS = ("x", "x-stream", "meta", "forum", "email", "chat")
# Settings (environment variable: the upper-case name) each channel needs; the first signs.
CHANNEL_SECRETS: dict[str, tuple[str, ...]] = {
    "x": ("x_consumer_secret",),
    "x-stream": ("x_stream_webhook_secret",),
    "meta": ("meta_app_secret", "meta_verify_token"),
    "forum": ("forum_webhook_secret",),
    "email": ("email_webhook_secret",),
    "chat": ("chat_webhook_secret",),
}
META_SIGNATURE_HEADER = "x-hub-signature-256"
X_SIGNATURE_HEADER = "x-twitter-webhooks-signature"


class MissingWebhookSecrets(Exception):
    """An enabled channel has no secret and the local-insecure setting is off."""


def missing_secrets(settings: IngestSettings) -> list[str]:
    """Environment variables of the enabled channels' secrets that are empty."""
    return [
        name.upper()
        for channel in settings.enabled_channels
        for name in CHANNEL_SECRETS[channel]
        if not getattr(settings, name)
    ]


class Doors:
    """The signature check of every enabled webhook, and the replay cache of our own."""

    def __init__(self, settings: IngestSettings) -> None:
        missing = missing_secrets(settings)
        if missing and not settings.webhooks_insecure_local:
            raise MissingWebhookSecrets(
                f"webhook secrets missing for enabled channels: {', '.join(missing)}. Set "
                "them, leave those channels out of INGEST_CHANNELS, or (local development "
                "only) set WEBHOOKS_INSECURE_LOCAL=true to accept unsigned calls."
            )
        self.enabled = settings.enabled_channels
        self.window_seconds = settings.webhook_replay_window_seconds
        self.secrets = {c: str(getattr(settings, CHANNEL_SECRETS[c][0])) for c in self.enabled}
        self.recent = RecentSignatures(self.window_seconds, settings.webhook_replay_cache_size)

    def unverified(self) -> list[str]:
        """Enabled channels whose calls are accepted unsigned (local-insecure setting)."""
        return [channel for channel, secret in self.secrets.items() if not secret]

    def problem(
        self, channel: str, body: bytes, headers: Mapping[str, str], now: float
    ) -> str | None:
        """Why the call is refused (401), or None; a valid call of our own claims its
        signature, to be released if the call then fails."""
        secret = self.secrets[channel]
        if not secret:
            return None
        if channel == "x":
            return signature_problem(secret, body, headers.get(X_SIGNATURE_HEADER))
        if channel == "meta":
            return hex_signature_problem(
                secret, body, headers.get(META_SIGNATURE_HEADER), META_SIGNATURE_HEADER
            )
        signature = headers.get(SIGNATURE_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        problem = timestamped_signature_problem(
            secret, body, signature, timestamp, now=now, window_seconds=self.window_seconds
        )
        if problem or not signature or not timestamp:
            return problem
        if not self.recent.claim(signature, int(timestamp), now):
            return f"{SIGNATURE_HEADER} was already used: replayed call"
        return None

    def release(self, channel: str, headers: Mapping[str, str]) -> None:
        """Forget the signature a failed call claimed, so that the sender may retry it."""
        signature = headers.get(SIGNATURE_HEADER)
        if self.secrets.get(channel) and channel not in ("x", "meta") and signature:
            self.recent.release(signature)
