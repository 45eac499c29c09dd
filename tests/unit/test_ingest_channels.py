"""The channel rows: each names what exists, the routes and their docs come from them, and a
new row is a new channel end to end (signature, route, normalizer, answer)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from socialcrm.v1 import interaction_pb2
from socialcrm_ingest import bodies
from socialcrm_ingest.channels import WEBHOOKS, SignatureScheme, Webhook
from socialcrm_ingest.formats.registry import NORMALIZERS
from socialcrm_ingest.poller.settings import PollerSettings
from socialcrm_ingest.poller.sources import KINDS
from socialcrm_ingest.security.doors import Doors
from socialcrm_ingest.security.signatures import timestamped_signature
from socialcrm_ingest.webhooks.api import add_webhook_routes
from socialcrm_ingest.webhooks.dedup import RecentIds
from socialcrm_ingest.webhooks.handlers import WebhookHandlers
from socialcrm_ingest.webhooks.settings import IngestSettings

NOW = 1_790_000_000


@pytest.mark.parametrize("webhook", WEBHOOKS.values(), ids=list(WEBHOOKS))
def test_a_row_names_a_format_and_settings_that_exist(webhook: Webhook) -> None:
    assert webhook.format in NORMALIZERS
    assert webhook.secrets
    for name in webhook.secrets:
        assert IngestSettings.model_fields[name].annotation is str


@pytest.mark.parametrize("kind", KINDS)
def test_a_poll_kind_names_a_format_and_settings_that_exist(kind: str) -> None:
    row = KINDS[kind]
    assert row.format in NORMALIZERS
    assert PollerSettings.model_fields[row.base_url_setting].default == row.default_base_url
    assert PollerSettings.model_fields[row.credential_setting].annotation is str


def app_with(settings: IngestSettings, published: list[interaction_pb2.Interaction]) -> FastAPI:
    async def publish(interactions: Sequence[interaction_pb2.Interaction]) -> None:
        published.extend(interactions)

    app = FastAPI()
    handlers = WebhookHandlers(
        settings, Doors(settings), publish, RecentIds(100), clock=lambda: float(NOW)
    )
    add_webhook_routes(app, handlers)
    return app


def test_each_row_is_a_documented_post_route() -> None:
    app = app_with(IngestSettings(webhooks_insecure_local=True), [])
    paths = app.openapi()["paths"]
    for channel, webhook in WEBHOOKS.items():
        post = paths[f"/v1/webhooks/{channel}"]["post"]
        assert post["summary"] == webhook.summary
        # The operation ids clients were generated with.
        assert (
            post["operationId"] == f"{webhook.route}_v1_webhooks_{channel.replace('-', '_')}_post"
        )
        content = post["requestBody"]["content"]
        assert list(content) == list(webhook.body.media_types)
        assert all(media["schema"] == webhook.schema for media in content.values())
        assert ("400" in post["responses"]) is webhook.body.is_json


def test_one_new_row_is_one_new_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    row = replace(
        WEBHOOKS["forum"],
        channel="community",
        summary="Community posts",
        route="community_posts",
        schema=bodies.FORUM,
    )
    assert row.signature is SignatureScheme.TIMESTAMPED_HEX
    monkeypatch.setitem(WEBHOOKS, row.channel, row)
    settings = IngestSettings(ingest_channels="community", forum_webhook_secret="secret")
    published: list[interaction_pb2.Interaction] = []
    app = app_with(settings, published)
    client = TestClient(app)
    post = {
        "type": "post",
        "id": "p-1",
        "thread_id": "t-1",
        "author": {"username": "camille"},
        "text": "Ma commande n'est jamais arrivée.",
        "created_at": "2026-09-21T09:00:00Z",
    }
    body = json.dumps(post).encode()
    signed = {
        "X-Signature-Timestamp": str(NOW),
        "X-Signature-256": timestamped_signature("secret", NOW, body),
    }

    unsigned = client.post("/v1/webhooks/community", content=body)
    answer = client.post("/v1/webhooks/community", content=body, headers=signed)

    assert unsigned.status_code == 401
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1
    assert [i.header.external_id for i in published] == ["p-1"]
    assert client.post("/v1/webhooks/forum", content=body, headers=signed).status_code == 404
    assert "/v1/webhooks/community" in app.openapi()["paths"]
