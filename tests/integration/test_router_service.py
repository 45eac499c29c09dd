"""The real router app, in-process, against the real Kafka broker: routing, escalations at
once and on SLA timers across a restart, and replies through its API (helpers in
tests/fixtures/router_app.py: each router has its own group, state topic, brand and clock)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from socialcrm.v1 import common_pb2, kpi_pb2, reply_pb2, routed_pb2
from tests.conftest import Infra
from tests.fixtures.kafka import publish
from tests.fixtures.router_app import (
    Setup,
    complaint,
    json_when,
    new_tweet_id,
    read,
    router_setup,
    running,
    tool_reply,
    until_gone,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def setup(infra: Infra, tmp_path: Path) -> Setup:
    return await router_setup(infra, tmp_path)


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
