"""The webhook pipeline without HTTP or broker: refusals carry their status, publication
is acknowledged before the answer, duplicates are answered from memory."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from socialcrm.v1 import interaction_pb2
from socialcrm_devstack.stack import LOCAL_WEBHOOK_SECRETS
from socialcrm_devstack.webhook_signing import signed_headers
from socialcrm_ingest.security.doors import Doors
from socialcrm_ingest.webhooks.dedup import RecentIds
from socialcrm_ingest.webhooks.errors import (
    BadRequest,
    BadSignature,
    BrokerUnavailable,
    ChannelNotServed,
    InvalidPayload,
    TooLarge,
    WebhookRefused,
    WrongVerifyToken,
)
from socialcrm_ingest.webhooks.handlers import Receipt, WebhookHandlers
from socialcrm_ingest.webhooks.publishing import NotAcknowledged
from socialcrm_ingest.webhooks.settings import IngestSettings

NOW = 1_790_000_000.0


def forum_post(post_id: str) -> dict[str, Any]:
    return {
        "type": "post",
        "id": post_id,
        "thread_id": "t-771",
        "author": {"username": "camille_mrt"},
        "text": "Commande bloquée depuis 10 jours.",
        "created_at": "2026-11-16T09:31:02Z",
    }


class Broker:
    """Publishes in memory; ``acknowledge`` is how many events it acknowledges, at most."""

    def __init__(self) -> None:
        self.published: list[interaction_pb2.Interaction] = []
        self.acknowledge: int | None = None

    async def publish(self, interactions: Sequence[interaction_pb2.Interaction]) -> None:
        acknowledged = list(interactions)[: self.acknowledge]
        self.published.extend(acknowledged)
        if len(acknowledged) < len(interactions):
            raise NotAcknowledged([i.header.event_id for i in acknowledged], len(interactions))


def handlers_with(broker: Broker, **values: Any) -> WebhookHandlers:
    secrets = {name.lower(): value for name, value in LOCAL_WEBHOOK_SECRETS.items()}
    settings = IngestSettings(**(secrets | values))
    return WebhookHandlers(
        settings, Doors(settings), broker.publish, RecentIds(100), clock=lambda: NOW
    )


def signed(channel: str, body: bytes, now: float = NOW) -> dict[str, str]:
    headers = signed_headers(f"/v1/webhooks/{channel}", body, LOCAL_WEBHOOK_SECRETS, now=now)
    return {name.lower(): value for name, value in headers.items()}


def body_of(*posts: dict[str, Any]) -> bytes:
    return json.dumps(posts[0] if len(posts) == 1 else {"events": list(posts)}).encode()


async def test_a_signed_call_is_published_then_answered_with_its_event_ids() -> None:
    broker = Broker()
    body = body_of(forum_post("p-1"), forum_post("p-2"))
    receipt = await handlers_with(broker).receive("forum", body, signed("forum", body), None)
    assert [i.header.external_id for i in broker.published] == ["p-1", "p-2"]
    assert receipt == Receipt(2, 0, [i.header.event_id for i in broker.published])
    assert {i.brand for i in broker.published} == {"acme"}


async def test_a_redelivered_event_is_answered_as_a_duplicate_without_publishing() -> None:
    broker = Broker()
    handlers = handlers_with(broker)
    first = body_of(forum_post("p-1"))
    await handlers.receive("forum", first, signed("forum", first), "acme")
    again = body_of(forum_post("p-1"), forum_post("p-2"))
    receipt = await handlers.receive("forum", again, signed("forum", again, NOW + 1), "acme")
    assert (receipt.accepted, receipt.duplicates, len(receipt.event_ids)) == (1, 1, 2)
    assert [i.header.external_id for i in broker.published] == ["p-1", "p-2"]


@pytest.mark.parametrize(
    ("channel", "body", "refusal", "reason", "status"),
    [
        ("forum", b"{not json", BadRequest, "invalid_json", 400),
        ("forum", b'{"type": "post"}', InvalidPayload, "invalid_payload", 422),
        ("email", b"no headers at all", InvalidPayload, "invalid_payload", 422),
    ],
)
async def test_bodies_out_of_shape_are_refused_with_their_status(
    channel: str, body: bytes, refusal: type[WebhookRefused], reason: str, status: int
) -> None:
    broker = Broker()
    with pytest.raises(refusal) as refused:
        await handlers_with(broker).receive(channel, body, signed(channel, body), None)
    assert (refused.value.reason, refused.value.status, refused.value.channel) == (
        reason,
        status,
        channel,
    )
    assert broker.published == []


async def test_unsigned_and_replayed_calls_are_refused_with_401() -> None:
    broker = Broker()
    handlers = handlers_with(broker)
    body = body_of(forum_post("p-1"))
    with pytest.raises(BadSignature, match="missing x-signature-timestamp header"):
        await handlers.receive("forum", body, {}, None)
    headers = signed("forum", body)
    await handlers.receive("forum", body, headers, None)
    with pytest.raises(BadSignature, match="replayed call") as replayed:
        await handlers.receive("forum", body, headers, None)
    assert replayed.value.status == 401


async def test_a_channel_not_served_is_404_naming_the_setting() -> None:
    handlers = handlers_with(Broker(), ingest_channels="forum")
    with pytest.raises(ChannelNotServed, match="INGEST_CHANNELS") as refused:
        handlers.require_enabled("chat")
    assert (refused.value.status, refused.value.reason) == (404, "disabled_channel")
    with pytest.raises(ChannelNotServed, match="known: x, x-stream, meta"):
        handlers.unknown_channel("myspace")


async def test_more_items_than_allowed_are_refused_before_anything_is_published() -> None:
    broker = Broker()
    body = body_of(forum_post("p-1"), forum_post("p-2"), forum_post("p-3"))
    with pytest.raises(TooLarge, match=r"3 interactions .* \(max_items_per_call\)") as refused:
        await handlers_with(broker, max_items_per_call=2).receive(
            "forum", body, signed("forum", body), None
        )
    assert (refused.value.status, refused.value.reason) == (413, "too_many_items")
    assert broker.published == []


async def test_a_body_too_large_closes_the_connection() -> None:
    refusal = handlers_with(Broker(), max_body_bytes=10).body_too_large("chat")
    assert (refusal.status, refusal.detail) == (413, "body over 10 bytes (max_body_bytes)")
    assert refusal.headers == {"Connection": "close"}


async def test_a_broker_failure_is_503_with_retry_after_and_the_retry_publishes_the_rest() -> None:
    broker = Broker()
    handlers = handlers_with(broker, retry_after_seconds=7)
    body = body_of(forum_post("p-1"), forum_post("p-2"))
    headers = signed("forum", body)
    broker.acknowledge = 1
    with pytest.raises(BrokerUnavailable, match="acknowledged 1 of 2 events") as refused:
        await handlers.receive("forum", body, headers, None)
    assert (refused.value.status, refused.value.headers) == (503, {"Retry-After": "7"})
    broker.acknowledge = None
    # The failed call released its signature: the sender's unchanged retry passes the door.
    receipt = await handlers.receive("forum", body, headers, None)
    assert (receipt.accepted, receipt.duplicates) == (1, 1)
    assert [i.header.external_id for i in broker.published] == ["p-1", "p-2"]


def test_the_crc_challenge_answers_plain_tokens_only() -> None:
    handlers = handlers_with(Broker())
    assert handlers.crc("abc123")["response_token"].startswith("sha256=")
    with pytest.raises(BadRequest, match="crc_token may hold only") as refused:
        handlers.crc('{"a": 1}')
    assert refused.value.reason == "bad_crc_token"
    with pytest.raises(ChannelNotServed, match="X_CONSUMER_SECRET"):
        handlers_with(Broker(), x_consumer_secret="", webhooks_insecure_local=True).crc("abc")


def test_the_meta_handshake_echoes_the_challenge_for_the_right_token() -> None:
    handlers = handlers_with(Broker())
    token = LOCAL_WEBHOOK_SECRETS["META_VERIFY_TOKEN"]
    assert handlers.meta_handshake("subscribe", token, "1158201444") == "1158201444"
    with pytest.raises(WrongVerifyToken) as refused:
        handlers.meta_handshake("subscribe", "guess", "1158201444")
    assert refused.value.status == 403
    with pytest.raises(BadRequest, match=r"hub\.mode=subscribe"):
        handlers.meta_handshake(None, token, "1158201444")
