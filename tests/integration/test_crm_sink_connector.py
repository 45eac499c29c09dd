"""The external-CRM connector on the running crm-sink app, against a local fake CRM endpoint."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from socialcrm import contract
from socialcrm_crm_sink.app import build_app
from socialcrm_crm_sink.external_crm import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from socialcrm_crm_sink.settings import CrmSinkSettings
from socialcrm_devstack.processes import free_port
from socialcrm_devstack.stack import LOCAL_FINGERPRINT_SECRET
from tests.conftest import Infra
from tests.fixtures.kafka import publish, read_to_end
from tests.fixtures.waiting import eventually_async
from tests.integration.test_crm_sink_identity import x_post

pytestmark = pytest.mark.integration

SECRET = "fake-crm-secret"
REFUSED_HANDLE = "zoe_refused"


@dataclass
class FakeCrm:
    """Records every call; answers 503 to the first one, 400 to contacts it refuses."""

    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks")
        async def hook(request: Request) -> Response:
            body = await request.body()
            self.calls.append((dict(request.headers), body))
            if len(self.calls) == 1:
                return Response(status_code=503, headers={"Retry-After": "0"})
            properties = json.loads(body).get("object", {}).get("properties", {})
            if properties.get("twitterhandle") == REFUSED_HANDLE:
                return Response("unknown property twitterhandle", status_code=400)
            return Response(status_code=204)

        return app

    def received(self, subscription: str) -> list[dict[str, Any]]:
        """The distinct changes of one kind (a retried call is the same change)."""
        bodies = {json.loads(body)["eventId"]: json.loads(body) for _, body in self.calls}
        return [b for b in bodies.values() if b["subscriptionType"] == subscription]


@pytest.fixture
async def fake_crm() -> AsyncIterator[tuple[FakeCrm, str]]:
    fake = FakeCrm()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    yield fake, f"http://127.0.0.1:{port}/hooks"
    server.should_exit = True
    await serving


async def test_changes_reach_the_external_crm_signed_retried_or_dead_lettered(
    infra: Infra, fake_crm: tuple[FakeCrm, str]
) -> None:
    fake, url = fake_crm
    marker = uuid.uuid4().hex[:8]
    settings = CrmSinkSettings(
        service_name=f"crm-sink-connector-{marker}",
        kafka_bootstrap_servers=infra.kafka.bootstrap,
        mongodb_uri=infra.mongo.uri,
        mongodb_database=f"crm_connector_{marker}",
        crm_reply_wait_seconds=1.0,
        crm_webhook_url=url,
        crm_webhook_secret=SECRET,
        crm_webhook_max_attempts=3,
        crm_webhook_backoff_seconds=0.05,
        crm_fingerprint_secret=LOCAL_FINGERPRINT_SECRET,
    )
    accepted = x_post(f"{int(marker, 16)}", f"nina_{marker}", 0)
    refused = x_post(f"{int(marker, 16) + 1}", REFUSED_HANDLE, 1)
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        await publish(infra.kafka.bootstrap, accepted, refused)

        nina = f"nina_{marker}"

        async def delivered() -> list[dict[str, Any]] | None:
            # The connector also pushes what other tests left on crm.events.v1 (recorded here
            # by this app's own consumer): wait for this test's contact and its ticket.
            contacts = [
                c
                for c in fake.received("contact.creation")
                if c["object"]["properties"].get("twitterhandle") == nina
            ]
            tickets = [
                t
                for t in fake.received("ticket.creation")
                if [c["objectId"] for c in contacts] == t["object"]["associations"]["contacts"]
            ]
            return contacts + tickets if contacts and tickets else None

        contact, ticket = await eventually_async(delivered, wait_seconds=90)
        dead = await eventually_async(
            lambda: _dead_letters(infra.kafka.bootstrap, settings.service_name), wait_seconds=90
        )

    assert ticket["object"]["associations"]["contacts"] == [contact["objectId"]]
    assert ticket["object"]["properties"]["hs_pipeline_stage"] == "1"
    for headers, body in fake.calls:
        timestamp = int(headers[TIMESTAMP_HEADER.lower()])
        assert headers[SIGNATURE_HEADER.lower()] == signature(SECRET, timestamp, body)
        assert headers["idempotency-key"] == json.loads(body)["eventId"]
    # The first call was answered 503 and retried with the same event id (and idempotency key).
    first_event_id = json.loads(fake.calls[0][1])["eventId"]
    assert [json.loads(b)["eventId"] for _, b in fake.calls[1:]].count(first_event_id) >= 1
    # One refused change (a redelivered copy of its event is refused and dead-lettered alike).
    assert len(set(dead)) == 1
    assert "HTTP 400 unknown property twitterhandle" in dead[0]


async def _dead_letters(bootstrap: str, consumer: str) -> list[str] | None:
    reasons = []
    for record in await read_to_end(bootstrap, "crm.events.v1.dlq"):
        envelope = contract.DeadLetter.FromString(record.value or b"")
        if envelope.consumer == f"{consumer}-external-crm":
            reasons.append(envelope.reason)
    return reasons or None
