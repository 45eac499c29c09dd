"""The real router app against the real Kafka broker sends an agent's reply to the network
in the network's API shape (X here), to a local HTTP endpoint that records it."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from socialcrm_devstack.processes import free_port
from tests.conftest import Infra
from tests.fixtures.kafka import publish
from tests.fixtures.router_app import (
    BACKLOG_SECONDS,
    Setup,
    complaint,
    json_when,
    new_tweet_id,
    router_setup,
    running,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def setup(infra: Infra, tmp_path: Path) -> Setup:
    return await router_setup(infra, tmp_path)


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.received.append(
            {
                "path": self.path,
                "json": json.loads(body) if body else None,
                "authorization": self.headers.get("Authorization"),
            }
        )
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"data": {"id": "1", "text": "sent"}}')

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def fake_network() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP endpoint that records what the router would send to a network."""
    received: list[dict[str, Any]] = []
    handler = type("Recorder", (_Recorder,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


async def test_replies_go_out_with_the_x_api_reply_shape(
    infra: Infra, setup: Setup, fake_network: tuple[str, list[dict[str, Any]]]
) -> None:
    base_url, received = fake_network
    settings = setup.settings.model_copy(
        update={
            "router_outbound_enabled": True,
            "router_x_api_base_url": base_url,
            "router_x_access_token": "test-token",
        }
    )
    event = complaint(setup, new_tweet_id(), reach=0.1)
    text = f"Bonjour, nous regardons ({uuid.uuid4().hex[:6]})"
    async with running(settings, setup.clock) as router:
        await publish(infra.kafka.bootstrap, event)
        await json_when(router, f"/v1/interactions/{event.header.event_id}", lambda _: True)
        response = await router.post(
            f"/v1/interactions/{event.header.event_id}/replies",
            json={"text": text},
        )
        assert response.status_code == 202, response.text
        async with asyncio.timeout(BACKLOG_SECONDS):
            while True:
                sent_now = [r for r in received if r["json"] and r["json"].get("text") == text]
                if sent_now:
                    break
                await asyncio.sleep(0.1)
    [sent] = sent_now
    assert sent["path"] == "/2/tweets"
    assert sent["json"] == {
        "text": text,
        "reply": {"in_reply_to_tweet_id": event.header.external_id},
    }
    assert sent["authorization"] == "Bearer test-token"
