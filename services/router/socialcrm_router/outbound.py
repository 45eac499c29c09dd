"""Outbound side of the reply loop: agents' replies posted to the networks' reply APIs.

``outbound_request`` (pure) maps a Reply to the platform's request shape:
- X API v2: ``POST /2/tweets`` with ``reply.in_reply_to_tweet_id`` in public,
  ``POST /2/dm_conversations/with/{participant_id}/messages`` in private;
- Meta Graph API: ``POST /{comment-id}/comments`` (Facebook) or
  ``POST /{ig-comment-id}/replies`` (Instagram) in public, ``POST /me/messages`` in
  private (to the author, or as a private reply to the comment).
``OutboundSender`` consumes ``social.replies.v1`` and sends them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import ConsumerRecord
from google.protobuf.message import Message

from socialcrm.kafka.processor import StreamProcessor
from socialcrm.kafka.producer import EventProducer
from socialcrm.lifecycle import Component
from socialcrm.v1 import common_pb2, reply_pb2
from socialcrm_router.settings import RouterSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboundRequest:
    network: str  # "x" or "meta": which base URL and token
    path: str
    json: dict[str, Any] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def outbound_request(reply: reply_pb2.Reply) -> OutboundRequest | None:
    """The network call that delivers ``reply``; None when there is nothing to send."""
    if not reply.text:
        return None  # status change only
    target = reply.in_reply_to_external_id
    channel = reply.header.channel
    if channel == common_pb2.CHANNEL_X:
        if reply.is_private and reply.recipient_channel_user_id:
            return OutboundRequest(
                "x",
                f"/2/dm_conversations/with/{reply.recipient_channel_user_id}/messages",
                json={"text": reply.text},
            )
        return OutboundRequest(
            "x", "/2/tweets", json={"text": reply.text, "reply": {"in_reply_to_tweet_id": target}}
        )
    if channel in (common_pb2.CHANNEL_FACEBOOK, common_pb2.CHANNEL_INSTAGRAM):
        if reply.is_private:
            recipient = (
                {"id": reply.recipient_channel_user_id}
                if reply.recipient_channel_user_id
                else {"comment_id": target}
            )
            return OutboundRequest(
                "meta",
                "/me/messages",
                json={
                    "recipient": recipient,
                    "message": {"text": reply.text},
                    "messaging_type": "RESPONSE",
                },
            )
        if channel == common_pb2.CHANNEL_INSTAGRAM:
            return OutboundRequest("meta", f"/{target}/replies", params={"message": reply.text})
        return OutboundRequest("meta", f"/{target}/comments", json={"message": reply.text})
    return None


class OutboundUnavailable(Exception):
    """The network did not answer or answered 5xx/429: retry later."""


class OutboundSender:
    """Handler of ``social.replies.v1``: sends each reply through ``client``."""

    def __init__(
        self, client: httpx.AsyncClient, base_urls: dict[str, str], tokens: dict[str, str]
    ) -> None:
        self.client = client
        self.base_urls = base_urls
        self.tokens = tokens

    async def handle(
        self, reply: reply_pb2.Reply, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        request = outbound_request(reply)
        if request is None:
            return []
        headers = {}
        if self.tokens.get(request.network):
            headers["Authorization"] = f"Bearer {self.tokens[request.network]}"
        url = self.base_urls[request.network].rstrip("/") + request.path
        try:
            response = await self.client.post(
                url, json=request.json or None, params=request.params or None, headers=headers
            )
        except httpx.TransportError as exc:
            raise OutboundUnavailable(f"{url}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise OutboundUnavailable(f"{url}: HTTP {response.status_code}")
        # Other errors (4xx) will not get better by retrying: dead-letter with the reason.
        response.raise_for_status()
        log.info(
            "reply sent",
            extra={"reply_event_id": reply.header.event_id, "network": request.network},
        )
        return []


class HttpClient:
    """The outbound HTTP client as a component, so it closes with the app."""

    name = "outbound-http"

    def __init__(self) -> None:
        self.client = httpx.AsyncClient(timeout=10.0)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.client.aclose()

    async def check(self) -> None:
        return None


def outbound_components(settings: RouterSettings, producer: EventProducer) -> list[Component]:
    """The HTTP client and the consumer that sends social.replies.v1 to the networks."""
    http = HttpClient()
    sender = OutboundSender(
        http.client,
        base_urls={"x": settings.router_x_api_base_url, "meta": settings.router_graph_api_base_url},
        tokens={"x": settings.router_x_access_token, "meta": settings.router_meta_access_token},
    )
    return [
        http,
        StreamProcessor(
            settings=settings,
            group_id=f"{settings.service_name}-outbound",
            input_type=reply_pb2.Reply,
            handler=sender.handle,
            producer=producer,
            transient_errors=(OutboundUnavailable,),
        ),
    ]
