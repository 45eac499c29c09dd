"""Why a webhook call is refused: one exception per answer, its HTTP status on the class.

``handlers`` raises them; ``api`` answers each with its status in the shared error shape
and counts it under ``reason`` (``socialcrm_ingest_rejected_total``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class WebhookRefused(Exception):
    """A refused call of ``channel``; ``detail`` names the header, field or limit."""

    status: ClassVar[int] = 400

    def __init__(
        self, channel: str, reason: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.channel = channel
        self.reason = reason
        self.detail = detail
        self.headers = dict(headers or {})


class BadRequest(WebhookRefused):
    """The body is not JSON, or a handshake or CRC call lacks what it must carry."""

    status = 400


class BadSignature(WebhookRefused):
    status = 401


class WrongVerifyToken(WebhookRefused):
    status = 403


class ChannelNotServed(WebhookRefused):
    """Unknown, not in INGEST_CHANNELS, or without the secret its answer needs."""

    status = 404


class TooLarge(WebhookRefused):
    """Over a size limit: the body, the items of one call, or one event's record."""

    status = 413


class InvalidPayload(WebhookRefused):
    """Not in the network's shape, a field out of bounds, or too slow to parse."""

    status = 422


class BrokerUnavailable(WebhookRefused):
    """The broker did not acknowledge every event in time: the network must retry."""

    status = 503
