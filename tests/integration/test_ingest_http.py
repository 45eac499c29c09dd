"""Ingest's HTTP answers with every webhook secret configured, on the real broker.

What each webhook published is read back from `social.interactions.v1` with aiokafka.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from socialcrm import contract
from socialcrm.v1 import interaction_pb2
from socialcrm_ingest.webhooks.app import build_app
from socialcrm_ingest.webhooks.settings import IngestSettings
from tests.conftest import Infra
from tests.fixtures.kafka import read_to_end
from tests.fixtures.payloads import FIXTURES, x_tweet_event

pytestmark = pytest.mark.integration

SECRET = "it-consumer-secret"
META_SECRET = "it-meta-app-secret"
META_TOKEN = "it-meta-verify-token"
OWN_SECRET = "it-own-webhooks-secret"
TOPIC = contract.topic_of(interaction_pb2.Interaction)


@pytest.fixture(scope="module")
def ingest(infra: Infra) -> Iterator[TestClient]:
    settings = IngestSettings(
        kafka_bootstrap_servers=infra.kafka.bootstrap,
        x_consumer_secret=SECRET,
        x_stream_webhook_secret=OWN_SECRET,
        meta_app_secret=META_SECRET,
        meta_verify_token=META_TOKEN,
        forum_webhook_secret=OWN_SECRET,
        email_webhook_secret=OWN_SECRET,
        chat_webhook_secret=OWN_SECRET,
        max_body_bytes=50_000,
    )
    with TestClient(build_app(settings)) as client:
        yield client


def unique_id() -> str:
    return str(uuid.uuid4().int)[:19]


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    return {
        "x-twitter-webhooks-signature": "sha256=" + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


def hex_signed(
    secret: str, body: bytes, header: str, content_type: str = "application/json"
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {header: f"sha256={digest}", "content-type": content_type}


def meta_signed(body: bytes) -> dict[str, str]:
    return hex_signed(META_SECRET, body, "X-Hub-Signature-256")


def own_signed(body: bytes, content_type: str = "application/json") -> dict[str, str]:
    """Our own webhooks sign the call's Unix time, a dot, then the body."""
    timestamp = str(int(time.time()))
    headers = hex_signed(OWN_SECRET, f"{timestamp}.".encode() + body, "X-Signature-256")
    return headers | {"X-Signature-Timestamp": timestamp, "content-type": content_type}


def tweet_body() -> bytes:
    return json.dumps(x_tweet_event(unique_id())).encode()


def meta_comment(comment_id: str) -> bytes:
    payload = fixture("meta/page_feed_comment.json")
    payload["entry"][0]["changes"][0]["value"]["comment_id"] = comment_id
    return json.dumps(payload).encode()


def published(bootstrap: str, event_ids: list[str]) -> list[interaction_pb2.Interaction]:
    """The records of ``social.interactions.v1`` with one of ``event_ids``, up to its end."""
    return [
        interaction
        for record in asyncio.run(read_to_end(bootstrap, TOPIC))
        for interaction in [contract.decode(interaction_pb2.Interaction, record.value)]
        if interaction.header.event_id in event_ids
    ]


def test_the_crc_challenge_is_answered(ingest: TestClient) -> None:
    response = ingest.get("/v1/webhooks/x", params={"crc_token": "challenge"})
    assert response.status_code == 200
    assert response.json()["response_token"].startswith("sha256=")


def test_signed_webhooks_are_accepted_and_redeliveries_keep_their_event_id(
    ingest: TestClient,
) -> None:
    body = tweet_body()
    first = ingest.post("/v1/webhooks/x", content=body, headers=signed(body))
    again = ingest.post("/v1/webhooks/x", content=body, headers=signed(body))
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["event_ids"] == again.json()["event_ids"]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing x-twitter-webhooks-signature"),
        ({"x-twitter-webhooks-signature": "sha256=Zm9v"}, "does not match the body"),
    ],
)
def test_unsigned_or_badly_signed_webhooks_get_401_with_the_reason(
    ingest: TestClient, headers: dict[str, str], reason: str
) -> None:
    response = ingest.post("/v1/webhooks/x", content=tweet_body(), headers=headers)
    assert response.status_code == 401
    assert reason in response.json()["detail"]


def test_bodies_over_the_limit_get_413(ingest: TestClient) -> None:
    body = b'{"tweet_create_events": [' + b" " * 60_000 + b"]}"
    response = ingest.post("/v1/webhooks/x", content=body, headers=signed(body))
    assert response.status_code == 413
    assert "50000 bytes" in response.json()["detail"]


def test_unknown_channels_get_404_naming_the_channel(ingest: TestClient) -> None:
    response = ingest.post("/v1/webhooks/myspace", json={})
    assert response.status_code == 404
    assert "'myspace'" in response.json()["detail"]
    assert "meta" in response.json()["detail"]


def test_x_direct_messages_are_published_as_private_dms(ingest: TestClient, infra: Infra) -> None:
    payload = fixture("x/direct_message_events.json")
    payload["direct_message_events"][0]["id"] = unique_id()
    body = json.dumps(payload).encode()
    response = ingest.post("/v1/webhooks/x", content=body, headers=signed(body))
    assert response.status_code == 200, response.text
    [dm] = published(infra.kafka.bootstrap, response.json()["event_ids"])
    assert dm.kind == "dm"
    assert not dm.is_public


def test_the_meta_handshake_answers_the_challenge_only_to_the_right_token(
    ingest: TestClient,
) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.challenge": "1158201444",
        "hub.verify_token": META_TOKEN,
    }
    accepted = ingest.get("/v1/webhooks/meta", params=params)
    assert accepted.status_code == 200
    assert accepted.text == "1158201444"
    assert accepted.headers["content-type"].startswith("text/plain")
    refused = ingest.get("/v1/webhooks/meta", params=params | {"hub.verify_token": "guess"})
    assert refused.status_code == 403


def test_meta_comments_are_published_once_however_often_meta_redelivers(
    ingest: TestClient, infra: Infra
) -> None:
    body = meta_comment(f"912345678901234_{unique_id()}")
    first = ingest.post("/v1/webhooks/meta", content=body, headers=meta_signed(body))
    again = ingest.post("/v1/webhooks/meta", content=body, headers=meta_signed(body))
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["accepted"] == 1
    assert first.json()["duplicates"] == 0
    assert again.json()["accepted"] == 0
    assert again.json()["duplicates"] == 1
    assert first.json()["event_ids"] == again.json()["event_ids"]
    [comment] = published(infra.kafka.bootstrap, first.json()["event_ids"])
    assert comment.kind == "comment"
    assert comment.author.display_name == "Camille Martin"


def test_unsigned_meta_webhooks_get_401_naming_the_header(ingest: TestClient) -> None:
    body = meta_comment(unique_id())
    missing = ingest.post("/v1/webhooks/meta", content=body)
    wrong = ingest.post("/v1/webhooks/meta", content=body, headers=meta_signed(b"other"))
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["detail"] == "missing x-hub-signature-256 header"
    assert wrong.json()["detail"] == "x-hub-signature-256 does not match the body"


def test_payloads_not_in_the_networks_shape_get_422_naming_the_field(ingest: TestClient) -> None:
    payload = json.loads(meta_comment(unique_id()))
    del payload["entry"][0]["changes"][0]["value"]["comment_id"]
    body = json.dumps(payload).encode()
    response = ingest.post("/v1/webhooks/meta", content=body, headers=meta_signed(body))
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "not a Meta Graph webhook payload: entry[0].changes[0].value.comment_id is missing"
    )


def test_invalid_json_gets_400(ingest: TestClient) -> None:
    body = b'{"object": "page", "entry": ['
    response = ingest.post("/v1/webhooks/meta", content=body, headers=meta_signed(body))
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


def test_filtered_stream_lines_are_each_published(ingest: TestClient, infra: Infra) -> None:
    messages = [fixture("x/filtered_stream.json") for _ in range(2)]
    for message in messages:
        message["data"]["id"] = unique_id()
    body = b"\n".join(json.dumps(m).encode() for m in messages) + b"\n"
    response = ingest.post(
        "/v1/webhooks/x-stream",
        content=body,
        headers=own_signed(body, "application/x-ndjson"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    assert len(published(infra.kafka.bootstrap, response.json()["event_ids"])) == 2


def test_signed_forum_replies_are_accepted_and_badly_signed_ones_refused(
    ingest: TestClient,
) -> None:
    body = json.dumps(fixture("forum/reply.json") | {"id": f"p-{unique_id()}"}).encode()
    accepted = ingest.post("/v1/webhooks/forum", content=body, headers=own_signed(body))
    refused = ingest.post(
        "/v1/webhooks/forum", content=body, headers=meta_signed(body) | own_signed(b"{}")
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["accepted"] == 1
    assert refused.status_code == 401
    assert "x-signature-256" in refused.json()["detail"]


def test_an_email_and_a_chat_of_one_customer_share_the_author_handle(
    ingest: TestClient, infra: Infra
) -> None:
    message = (FIXTURES / "email" / "reply.eml").read_bytes()
    message = message.replace(b"CAF=reply-48213.2", f"reply-{unique_id()}".encode())
    mail = ingest.post(
        "/v1/webhooks/email",
        content=message,
        headers=own_signed(message, "message/rfc822"),
        params={"brand": "acme-fr"},
    )
    transcript = fixture("chat/transcript.json") | {"conversation_id": f"c-{unique_id()}"}
    body = json.dumps(transcript).encode()
    chat = ingest.post("/v1/webhooks/chat", content=body, headers=own_signed(body))
    assert mail.status_code == chat.status_code == 200, (mail.text, chat.text)
    assert chat.json()["accepted"] == 2
    records = published(infra.kafka.bootstrap, mail.json()["event_ids"] + chat.json()["event_ids"])
    assert sorted(r.kind for r in records) == ["chat", "chat", "email"]
    assert {r.author.handle for r in records} == {"camille.martin@example.fr"}
    assert {r.brand for r in records if r.kind == "email"} == {"acme-fr"}


def test_a_redelivery_inside_one_body_is_published_once(ingest: TestClient, infra: Infra) -> None:
    payload = json.loads(meta_comment(unique_id()))
    payload["entry"].append(copy.deepcopy(payload["entry"][0]))
    body = json.dumps(payload).encode()
    response = ingest.post("/v1/webhooks/meta", content=body, headers=meta_signed(body))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == response.json()["duplicates"] == 1
    assert len(published(infra.kafka.bootstrap, response.json()["event_ids"])) == 1


def test_channels_left_out_of_ingest_channels_answer_404_and_need_no_secret(
    infra: Infra,
) -> None:
    settings = IngestSettings(
        kafka_bootstrap_servers=infra.kafka.bootstrap,
        ingest_channels="forum",
        forum_webhook_secret=OWN_SECRET,
    )
    with TestClient(build_app(settings)) as forum_only:
        body = tweet_body()
        tweet = forum_only.post("/v1/webhooks/x", content=body, headers=signed(body))
        crc = forum_only.get("/v1/webhooks/x", params={"crc_token": "challenge"})
        assert tweet.status_code == crc.status_code == 404
        assert tweet.json()["detail"] == "channel 'x' is not in INGEST_CHANNELS"
        post = json.dumps(fixture("forum/reply.json") | {"id": f"p-{unique_id()}"}).encode()
        accepted = forum_only.post("/v1/webhooks/forum", content=post, headers=own_signed(post))
        assert accepted.status_code == 200, accepted.text
