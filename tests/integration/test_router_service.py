"""The real router app, in-process, against the real Kafka broker of the ``infra`` fixture.

Each test gives its router its own consumer group, SLA state topic and brand, so that it
ignores what other routers (e.g. the platform's) do on the shared broker. Time is an
injected clock: SLA deadlines are seconds long, and the clock is moved past them.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, kpi_pb2, reply_pb2, routed_pb2
from socialcrm_devstack.processes import free_port
from socialcrm_ingest.formats.x_account_activity import normalize_account_activity
from socialcrm_router.app import build_app
from socialcrm_router.rules import RulesError
from socialcrm_router.settings import RouterSettings
from socialcrm_sentiment.enrich import enrich
from tests.conftest import Infra
from tests.fixtures.kafka import Record, publish, read_until
from tests.fixtures.payloads import x_tweet_event
from tests.fixtures.waiting import eventually_async

pytestmark = pytest.mark.integration

M = TypeVar("M", bound=Message)

# The routers under test take one agent key; the reply's agent is the key's.
AGENT_KEY = "it-router-agent-key"
AGENT_AUTH = {"Authorization": f"Bearer {AGENT_KEY}"}

RULES = """
version: {version}
queues:
  customer-service-fr: {{team: customer-service}}
  not-ours: {{team: nobody}}
escalations:
  - id: influential-negative
    when: {{brand: {brand}, polarity: negative, reach_min: 0.6}}
    reason: influential author, negative sentiment
rules:
  - id: french-complaints
    when: {{brand: {brand}, language: fr, polarity: negative}}
    queue: customer-service-fr
    priority: high
    next_best_channel: private_message
  # Interactions of other tests on the shared broker: nothing to watch.
  - id: not-ours
    queue: not-ours
    priority: low
    needs_response: false
sla:
  - {{first_response: 4h}}
  - {{priority: urgent, first_response: 3s}}
  - {{priority: high, first_response: 3s}}
escalation: {{second_level_after: 2s, second_level_queue: duty-manager}}
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Setup:
    settings: RouterSettings
    brand: str
    rules_file: Path
    clock: Clock


@pytest.fixture
def setup(infra: Infra, tmp_path: Path) -> Setup:
    return router_setup(infra, tmp_path)


def router_setup(infra: Infra, tmp_path: Path) -> Setup:
    """A router of its own: consumer group, state topic, brand and rules file."""
    marker = uuid.uuid4().hex[:10]
    brand = f"brand-{marker}"
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES.format(version="it-1", brand=brand))
    settings = RouterSettings(
        service_name=f"router-it-{marker}",
        kafka_bootstrap_servers=infra.kafka.bootstrap,
        router_rules_file=str(rules_file),
        router_rules_poll_seconds=0.1,
        router_sla_scan_seconds=0.1,
        router_state_topic=f"router.sla-state.it-{marker}",
        router_follow_replies=True,
        api_keys=f"{AGENT_KEY}=agent:agent-7",
    )
    return Setup(settings, brand, rules_file, Clock(datetime.now(UTC)))


@asynccontextmanager
async def running(
    settings: RouterSettings, clock: Callable[[], datetime]
) -> AsyncIterator[httpx.AsyncClient]:
    """The router app started (lifespan) and an HTTP client on it."""
    app = build_app(settings, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://router", headers=AGENT_AUTH
        ) as client:
            yield client


def complaint(setup: Setup, tweet_id: str, *, reach: float) -> enriched_pb2.EnrichedInteraction:
    """A French complaint on X as the sentiment service enriches it."""
    [interaction] = normalize_account_activity(
        x_tweet_event(tweet_id, text="Mon colis est en retard, c'est inadmissible !"),
        brand=setup.brand,
        ingested_at=setup.clock.now,
    )
    interaction.header.occurred_at.CopyFrom(contract.timestamp(setup.clock.now))
    enriched = enrich(interaction)
    enriched.enrichment.reach = reach
    return enriched


def new_tweet_id() -> str:
    return str(uuid.uuid4().int)[:18]


def tool_reply(answered: enriched_pb2.EnrichedInteraction, at: datetime) -> reply_pb2.Reply:
    reply_id = str(uuid.uuid4())
    return reply_pb2.Reply(
        header=common_pb2.EventHeader(
            event_id=reply_id,
            channel=answered.header.channel,
            external_id=f"tool:{reply_id}",
            occurred_at=contract.timestamp(at + timedelta(seconds=2)),
            ingested_at=contract.timestamp(at + timedelta(seconds=2)),
            producer="crm-tool",
        ),
        interaction_event_id=answered.header.event_id,
        conversation_id=answered.interaction.conversation_id,
        agent_id="agent-9",
        text="Réponse envoyée depuis l'outil du centre de contact",
    )


def _decoded(message_type: type[M], record: Record) -> M | None:
    try:
        return contract.decode(message_type, record.value)
    except contract.ContractError:
        return None  # another test's poison record on the shared topic


async def read(
    bootstrap: str,
    message_type: type[M],
    keep: Callable[[M], bool],
    expected: int,
    wait_seconds: float = 20,
) -> list[M]:
    """Records of the type's topic that ``keep`` selects, until ``expected`` or timeout."""

    def kept(record: Record) -> bool:
        message = _decoded(message_type, record)
        return message is not None and keep(message)

    records = await read_until(
        bootstrap,
        contract.topic_of(message_type),
        lambda found: len(found) >= expected,
        keep=kept,
        wait_seconds=wait_seconds,
    )
    return [m for r in records if (m := _decoded(message_type, r)) is not None]


async def json_when(client: httpx.AsyncClient, path: str, ok: Callable[[Any], bool]) -> Any:
    """The JSON ``path`` answers once ``ok`` holds for it."""

    async def probe() -> Any:
        response = await client.get(path)
        return response.json() if response.status_code == 200 and ok(response.json()) else None

    return await eventually_async(probe)


async def until_gone(client: httpx.AsyncClient, path: str) -> None:
    """Wait until ``path`` answers 404 (what the owner publishes reaches every replica)."""

    async def probe() -> bool | None:
        return True if (await client.get(path)).status_code == 404 else None

    await eventually_async(probe)


async def test_a_french_complaint_from_an_influencer_is_routed_and_escalated_at_once(
    infra: Infra, setup: Setup
) -> None:
    event = complaint(setup, new_tweet_id(), reach=0.95)
    event_id = event.header.event_id
    async with running(setup.settings, setup.clock):
        await publish(infra.kafka.bootstrap, event)
        [routed] = await read(
            infra.kafka.bootstrap,
            routed_pb2.RoutedInteraction,
            lambda m: m.header.event_id == event_id and m.routing.rules_version == "it-1",
            expected=1,
        )
        [escalation] = await read(
            infra.kafka.bootstrap,
            routed_pb2.Escalation,
            # The platform's own router, when running, escalates it too, by its rules.
            lambda m: (
                m.interaction_event_id == event_id and m.level == 0 and m.rules_version == "it-1"
            ),
            expected=1,
        )
        alerts = await read(
            infra.kafka.bootstrap,
            kpi_pb2.Alert,
            lambda m: m.alert_key == f"high_risk_escalation:{event_id}",
            expected=1,
        )
    routing = routed.routing
    assert routing.queue == "customer-service-fr"
    assert routing.rule_id == "french-complaints"
    assert routing.priority == common_pb2.PRIORITY_URGENT
    assert routing.escalated
    assert routing.escalation_reason == "influential author, negative sentiment"
    assert routing.next_best_channel == "private_message"
    assert escalation.to_queue == "customer-service-lead"
    assert escalation.reason == "influential author, negative sentiment"
    assert alerts[0].severity == kpi_pb2.SEVERITY_CRITICAL


async def test_an_unanswered_item_escalates_after_a_restart_and_an_answered_one_does_not(
    infra: Infra, setup: Setup
) -> None:
    start = setup.clock.now
    unanswered = complaint(setup, new_tweet_id(), reach=0.1)
    answered = complaint(setup, new_tweet_id(), reach=0.1)
    answered_elsewhere = complaint(setup, new_tweet_id(), reach=0.1)
    unanswered_id, answered_id = unanswered.header.event_id, answered.header.event_id
    elsewhere_id = answered_elsewhere.header.event_id

    async with running(setup.settings, setup.clock) as router:
        await publish(infra.kafka.bootstrap, unanswered, answered, answered_elsewhere)
        for event_id in (unanswered_id, answered_id, elsewhere_id):
            await json_when(router, f"/v1/interactions/{event_id}", lambda _: True)
        # Another tool answers on the replies topic directly.
        await publish(infra.kafka.bootstrap, tool_reply(answered_elsewhere, start))
        await json_when(
            router, f"/v1/interactions/{elsewhere_id}", lambda s: s["first_response_at"]
        )
        setup.clock.now = start + timedelta(seconds=1)
        response = await router.post(
            f"/v1/interactions/{answered_id}/replies",
            json={"text": "Bonjour, nous regardons votre colis"},
        )
        # Accepted: the owner of the interaction's partition applies it and publishes the Reply.
        assert response.status_code == 202, response.text
        reply_id = response.json()["reply_event_id"]
        await json_when(router, f"/v1/interactions/{answered_id}", lambda s: s["first_response_at"])
        # Still before the deadline when this router stops.
        state = (await router.get(f"/v1/interactions/{unanswered_id}")).json()
        assert state["escalation_level"] == 0

    # The router restarts after the 3 s deadline: only the durable state knows the timers.
    setup.clock.now = start + timedelta(seconds=4)
    async with running(setup.settings, setup.clock) as router:
        await json_when(
            router, f"/v1/interactions/{unanswered_id}", lambda s: s["escalation_level"] == 1
        )
        setup.clock.now = start + timedelta(seconds=6)
        await json_when(
            router, f"/v1/interactions/{unanswered_id}", lambda s: s["escalation_level"] == 2
        )
        answered_state = (await router.get(f"/v1/interactions/{answered_id}")).json()
        assert answered_state["escalation_level"] == 0
        assert answered_state["first_response_at"] is not None
        resolved = await router.post(
            f"/v1/interactions/{answered_id}/status",
            json={"status": "resolved"},
        )
        assert resolved.status_code == 202, resolved.text
        await until_gone(router, f"/v1/interactions/{answered_id}")
        missing = await router.post(f"/v1/interactions/{answered_id}/replies", json={"text": "?"})
        assert missing.status_code == 404
        assert "already resolved" in missing.json()["detail"]

    ids = {unanswered_id, answered_id, elsewhere_id}
    escalations = await read(
        infra.kafka.bootstrap,
        routed_pb2.Escalation,
        lambda m: m.interaction_event_id in ids and m.level > 0 and m.rules_version == "it-1",
        expected=3,  # one more than expected: waits, so a wrong escalation would show
        wait_seconds=3,
    )
    assert sorted((e.interaction_event_id, e.level, e.to_queue) for e in escalations) == [
        (unanswered_id, 1, "customer-service-lead"),
        (unanswered_id, 2, "duty-manager"),
    ]
    alerts = await read(
        infra.kafka.bootstrap,
        kpi_pb2.Alert,
        lambda m: m.alert_key == f"sla_escalation:{unanswered_id}",
        expected=2,
    )
    assert sorted(a.severity for a in alerts) == [
        kpi_pb2.SEVERITY_WARNING,
        kpi_pb2.SEVERITY_CRITICAL,
    ]
    # At least once: a command handled again after a restart gives the same Reply again,
    # with the same event id, which consumers deduplicate.
    seen: set[str] = set()

    def new_reply(reply: reply_pb2.Reply) -> bool:
        if reply.interaction_event_id != answered_id or reply.header.event_id in seen:
            return False
        seen.add(reply.header.event_id)
        return True

    distinct = await read(infra.kafka.bootstrap, reply_pb2.Reply, new_reply, expected=2)
    first, closing = sorted(distinct, key=lambda r: r.header.occurred_at.seconds)
    assert first.header.event_id == reply_id  # the id the API answered with
    assert (first.first_response, first.sla_status) == (True, reply_pb2.SLA_STATUS_MET)
    assert first.first_response_seconds == 1.0
    assert first.in_reply_to_external_id == answered.header.external_id
    assert first.agent_id == closing.agent_id == "agent-7"  # the key's agent
    assert (closing.status, closing.resolution_seconds) == ("resolved", 6.0)


async def test_an_invalid_rule_file_is_rejected_and_the_previous_rules_stay_active(
    infra: Infra, setup: Setup
) -> None:
    async with running(setup.settings, setup.clock) as router:
        assert (await router.get("/v1/rules")).json()["version"] == "it-1"
        broken = RULES.format(version="it-2", brand=setup.brand).replace(
            "reach_min: 0.6", "reach_min: 6"
        )
        setup.rules_file.write_text(broken)
        bump_mtime(setup.rules_file)
        rules = await json_when(router, "/v1/rules", lambda r: r["last_error"] != "")
        assert rules["version"] == "it-1"
        assert (
            "escalation 'influential-negative' (escalations[0]): field when.reach_min:"
            " Input should be less than or equal to 1"
        ) in rules["last_error"]
        event = complaint(setup, new_tweet_id(), reach=0.1)
        await publish(infra.kafka.bootstrap, event)
        [routed] = await read(
            infra.kafka.bootstrap,
            routed_pb2.RoutedInteraction,
            lambda m: (
                m.header.event_id == event.header.event_id
                and m.routing.rule_id == "french-complaints"
            ),
            expected=1,
        )
        assert routed.routing.rules_version == "it-1"

        setup.rules_file.write_text(RULES.format(version="it-3", brand=setup.brand))
        bump_mtime(setup.rules_file)
        rules = await json_when(router, "/v1/rules", lambda r: r["version"] == "it-3")
        assert rules["last_error"] == ""


async def test_an_invalid_rule_file_at_start_stops_the_router(setup: Setup) -> None:
    setup.rules_file.write_text(
        RULES.format(version="x", brand=setup.brand).replace(
            "queue: customer-service-fr", "queue: cs"
        )
    )
    with pytest.raises(RulesError, match=r"rule 'french-complaints' \(rules\[0\]\): field queue"):
        async with running(setup.settings, setup.clock):
            pass


def bump_mtime(path: Path) -> None:
    """A later modification time, even on file systems with coarse timestamps."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


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
        async with asyncio.timeout(20):
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
