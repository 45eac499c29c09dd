"""What each webhook requires before its body is read as an event (pure: ``now`` is given).

Webhooks fail closed: an enabled channel without its secret keeps ingest from starting,
unless the local-insecure setting is on. Each call is checked by its channel's signature
scheme (its row in ``socialcrm_ingest.channels`` names the scheme and the secrets):

- X's: ``x-twitter-webhooks-signature`` (base64 HMAC of the body, consumer secret);
- Meta's: ``X-Hub-Signature-256`` (hex HMAC of the body, app secret);
- ours (X filtered-stream relay, forum, email gateway, chat): ``X-Signature-Timestamp``
  within the replay window and ``X-Signature-256`` over ``"<timestamp>.<body>"``; the
  same signature twice inside the window is a replay.

X and Meta send no timestamp: their redeliveries are answered as duplicates by event id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from socialcrm_ingest.channels import WEBHOOKS, SignatureScheme
from socialcrm_ingest.security.replay import RecentSignatures
from socialcrm_ingest.security.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    hex_signature_problem,
    timestamped_signature_problem,
)
from socialcrm_ingest.security.x_signatures import signature_problem

META_SIGNATURE_HEADER = "x-hub-signature-256"
X_SIGNATURE_HEADER = "x-twitter-webhooks-signature"


class MissingWebhookSecrets(Exception):
    """An enabled channel has no secret and the local-insecure setting is off."""


class DoorSettings(Protocol):
    """What the doors read of the webhooks' settings (``webhooks.settings.IngestSettings``),
    besides each channel's secrets, read by the setting names of its row."""

    @property
    def enabled_channels(self) -> tuple[str, ...]: ...

    @property
    def webhooks_insecure_local(self) -> bool: ...

    @property
    def webhook_replay_window_seconds(self) -> int: ...

    @property
    def webhook_replay_cache_size(self) -> int: ...


def missing_secrets(settings: DoorSettings) -> list[str]:
    """Environment variables of the enabled channels' secrets that are empty."""
    return [
        name.upper()
        for channel in settings.enabled_channels
        for name in WEBHOOKS[channel].secrets
        if not getattr(settings, name)
    ]


class Doors:
    """The signature check of every enabled webhook, and the replay cache of our own."""

    def __init__(self, settings: DoorSettings) -> None:
        missing = missing_secrets(settings)
        if missing and not settings.webhooks_insecure_local:
            raise MissingWebhookSecrets(
                f"webhook secrets missing for enabled channels: {', '.join(missing)}. Set "
                "them, leave those channels out of INGEST_CHANNELS, or (local development "
                "only) set WEBHOOKS_INSECURE_LOCAL=true to accept unsigned calls."
            )
        self.enabled = settings.enabled_channels
        self.window_seconds = settings.webhook_replay_window_seconds
        self.secrets = {c: str(getattr(settings, WEBHOOKS[c].secrets[0])) for c in self.enabled}
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
        match WEBHOOKS[channel].signature:
            case SignatureScheme.X_BASE64:
                return signature_problem(secret, body, headers.get(X_SIGNATURE_HEADER))
            case SignatureScheme.META_HEX:
                return hex_signature_problem(
                    secret, body, headers.get(META_SIGNATURE_HEADER), META_SIGNATURE_HEADER
                )
            case SignatureScheme.TIMESTAMPED_HEX:
                return self._fresh_problem(secret, body, headers, now)

    def _fresh_problem(
        self, secret: str, body: bytes, headers: Mapping[str, str], now: float
    ) -> str | None:
        """Our own scheme: signed with its timestamp, fresh, and not seen in the window."""
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
        if (
            self.secrets.get(channel)
            and WEBHOOKS[channel].signature is SignatureScheme.TIMESTAMPED_HEX
            and signature
        ):
            self.recent.release(signature)
