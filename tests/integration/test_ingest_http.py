"""Ingest's HTTP answers with a configured X secret, on the real broker."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from socialcrm_ingest.app import build_app
from socialcrm_ingest.settings import IngestSettings
from tests.conftest import Infra
from tests.fixtures.payloads import x_tweet_event

pytestmark = pytest.mark.integration

SECRET = "it-consumer-secret"


@pytest.fixture
def ingest(infra: Infra) -> Iterator[TestClient]:
    settings = IngestSettings(
        kafka_bootstrap_servers=infra.kafka.bootstrap,
        x_consumer_secret=SECRET,
        max_body_bytes=50_000,
    )
    with TestClient(build_app(settings)) as client:
        yield client


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    return {
        "x-twitter-webhooks-signature": "sha256=" + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


def tweet_body() -> bytes:
    return json.dumps(x_tweet_event(str(uuid.uuid4().int)[:19])).encode()


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
