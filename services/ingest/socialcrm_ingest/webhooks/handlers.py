"""The request pipeline of every webhook, from a body read under its cap to the answer.

``receive``: signature (``security.doors``), decoding, the channel's pure normalizer
(``formats.registry.normalizers``) off the event loop, the limits of one call,
deduplication of recent event ids, then publication acknowledged by the broker before
the network gets its answer. Every refusal is a ``WebhookRefused`` carrying its status;
HTTP is ``api``'s business.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn

from socialcrm.v1 import interaction_pb2
from socialcrm_ingest.formats.payload import PayloadError
from socialcrm_ingest.formats.registry import normalizers
from socialcrm_ingest.security.doors import Doors
from socialcrm_ingest.security.x_signatures import crc_response, crc_token_problem
from socialcrm_ingest.webhooks.channels import WEBHOOKS, Webhook
from socialcrm_ingest.webhooks.dedup import RecentIds
from socialcrm_ingest.webhooks.errors import (
    BadRequest,
    BadSignature,
    BrokerUnavailable,
    ChannelNotServed,
    InvalidPayload,
    TooLarge,
    WrongVerifyToken,
)
from socialcrm_ingest.webhooks.metrics import ACCEPTED, DUPLICATES
from socialcrm_ingest.webhooks.publishing import NotAcknowledged, record_size_problem
from socialcrm_ingest.webhooks.settings import IngestSettings

log = logging.getLogger(__name__)

Interactions = Sequence[interaction_pb2.Interaction]
# Publishes and waits for the broker's acknowledgement; raises NotAcknowledged.
Publish = Callable[[Interactions], Awaitable[None]]


@dataclass(frozen=True)
class Receipt:
    """The answer to a webhook: ``event_ids`` lists every interaction of the body,
    ``accepted`` those published, ``duplicates`` those published recently already."""

    accepted: int
    duplicates: int
    event_ids: list[str]


class WebhookHandlers:
    """Every webhook call, given its channel, its raw body and its headers."""

    def __init__(
        self,
        settings: IngestSettings,
        doors: Doors,
        publish: Publish,
        recent: RecentIds,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.doors = doors
        self.publish = publish
        self.recent = recent
        self.clock = clock
        self.normalizers = normalizers(settings.mail_gateway_secret)

    def require_enabled(self, channel: str) -> None:
        if channel not in self.doors.enabled:
            raise ChannelNotServed(
                channel, "disabled_channel", f"channel {channel!r} is not in INGEST_CHANNELS"
            )

    def unknown_channel(self, channel: str) -> NoReturn:
        raise ChannelNotServed(
            "unknown",
            "unknown_channel",
            f"unknown channel {channel!r}; known: {', '.join(WEBHOOKS)}",
        )

    def body_too_large(self, channel: str) -> TooLarge:
        """The refusal of a body over MAX_BODY_BYTES, whose rest is then not read."""
        return TooLarge(
            channel,
            "too_large",
            f"body over {self.settings.max_body_bytes} bytes (max_body_bytes)",
            # The connection is closed after the answer: the rest of the body is never read.
            headers={"Connection": "close"},
        )

    async def receive(
        self, channel: str, body: bytes, headers: Mapping[str, str], brand: str | None
    ) -> Receipt:
        """Verify, normalize and publish the body of a call to an enabled channel."""
        problem = self.doors.problem(channel, body, headers, self.clock())
        if problem:
            raise BadSignature(channel, "bad_signature", problem)
        try:
            return await self._accept(WEBHOOKS[channel], body, brand)
        except BaseException:
            # The call failed: its sender may retry it as it is, within the window.
            self.doors.release(channel, headers)
            raise

    def crc(self, crc_token: str) -> dict[str, str]:
        """X's CRC challenge, answered for a plain token only."""
        self.require_enabled("x")
        secret = self.settings.x_consumer_secret
        if not secret:
            raise ChannelNotServed("x", "crc_unconfigured", "X_CONSUMER_SECRET is not configured")
        # Answering any token would sign any body (the same HMAC signs X's POSTs).
        problem = crc_token_problem(crc_token)
        if problem:
            raise BadRequest("x", "bad_crc_token", problem)
        return crc_response(secret, crc_token)

    def meta_handshake(self, mode: str | None, token: str | None, challenge: str | None) -> str:
        """Meta's subscription handshake: the challenge, when the verify token matches."""
        self.require_enabled("meta")
        if mode != "subscribe" or challenge is None:
            raise BadRequest(
                "meta", "bad_handshake", "expected hub.mode=subscribe and hub.challenge"
            )
        expected = self.settings.meta_verify_token
        if not expected or not hmac.compare_digest((token or "").encode(), expected.encode()):
            raise WrongVerifyToken("meta", "bad_verify_token", "hub.verify_token does not match")
        return challenge

    def normalize(
        self, webhook: Webhook, body: bytes, brand: str
    ) -> list[interaction_pb2.Interaction]:
        try:
            payload = webhook.decode(body)
        except (ValueError, RecursionError) as exc:
            raise BadRequest(
                webhook.channel, "invalid_json", f"body is not valid JSON: {exc}"
            ) from exc
        try:
            return self.normalizers[webhook.format](payload, brand, datetime.now(UTC))
        except PayloadError as exc:
            raise InvalidPayload(
                webhook.channel, "invalid_payload", f"not {webhook.shape}: {exc}"
            ) from exc
        except UnicodeEncodeError as exc:
            # JSON may escape lone surrogates, which no UTF-8 text field can hold.
            raise InvalidPayload(
                webhook.channel, "invalid_payload", f"not {webhook.shape}: invalid text: {exc}"
            ) from exc

    async def _parse(
        self, webhook: Webhook, body: bytes, brand: str
    ) -> list[interaction_pb2.Interaction]:
        """``normalize`` off the event loop (an email's MIME tree can be slow to parse).

        The timeout answers the network, but cannot stop the thread: what keeps a parse short
        is that every format does work linear in a bounded input (``MAX_BODY_BYTES``, then
        ``mime_bounds`` and ``formats.html_text`` for an email), released to the event loop
        between Python steps rather than held in one long regex call.
        """
        timeout = self.settings.parse_timeout_seconds
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self.normalize, webhook, body, brand), timeout
            )
        except TimeoutError:
            raise InvalidPayload(
                webhook.channel,
                "parse_timeout",
                f"not {webhook.shape}: parsing took over {timeout} s (parse_timeout_seconds)",
            ) from None

    async def _accept(self, webhook: Webhook, body: bytes, brand: str | None) -> Receipt:
        """Normalize a verified body, publish what was not published recently, answer."""
        settings = self.settings
        interactions = await self._parse(webhook, body, brand or settings.default_brand)
        # Every refusal happens here, before the first record is sent (see publishing).
        if len(interactions) > settings.max_items_per_call:
            raise TooLarge(
                webhook.channel,
                "too_many_items",
                f"{len(interactions)} interactions in one call, over the limit of "
                f"{settings.max_items_per_call} (max_items_per_call)",
            )
        problem = record_size_problem(interactions, settings.kafka_max_message_bytes)
        if problem:
            raise TooLarge(webhook.channel, "too_large", problem)
        unique = not_seen_recently(self.recent, interactions)
        try:
            await self.publish(unique)
        except NotAcknowledged as exc:
            # The network must retry; what was acknowledged is not published again then.
            self.recent.remember(exc.acknowledged)
            log.warning(
                "broker unavailable, webhook refused",
                extra={"channel": webhook.channel, "error": repr(exc.__cause__ or exc)},
            )
            raise BrokerUnavailable(
                webhook.channel,
                "broker_unavailable",
                f"the event broker acknowledged {len(exc.acknowledged)} of {exc.total} events; "
                "retry later",
                headers={"Retry-After": str(settings.retry_after_seconds)},
            ) from exc
        self.recent.remember(i.header.event_id for i in unique)
        duplicates = len(interactions) - len(unique)
        ACCEPTED.labels(webhook.channel).inc(len(unique))
        if duplicates:
            DUPLICATES.labels(webhook.channel).inc(duplicates)
        return Receipt(len(unique), duplicates, [i.header.event_id for i in interactions])


def not_seen_recently(recent: RecentIds, interactions: Interactions) -> Interactions:
    """Interactions to publish: not published recently, and each id once."""
    first: dict[str, interaction_pb2.Interaction] = {}
    for interaction in interactions:
        first.setdefault(interaction.header.event_id, interaction)
    return [first[event_id] for event_id in recent.unseen(first)]
