"""Issue 25, the router's findings, against the real router app on the real broker.

- finding 5 (consumer side): a forged command on ``router.sla-commands.v1`` replied as an
  invented agent with a back-dated time and turned a breached SLA into "met"; a forged
  reply back-dated a first response;
- finding 6: erasure missed a message in flight: the person's handle stayed in the SLA
  state and the interaction stayed open in the reply view (also when the router held no
  state of the erased interactions, hence learnt no author from it);
- low: any agent key acted on every queue, and 300 replies to one interaction went through
  in 5.8 s.

Each test runs its own router (consumer group, state topic, brand, author) with an
injected clock, as tests/integration/test_router_service.py does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, reply_pb2, routed_pb2
from socialcrm_ingest.formats.x_account_activity import normalize_account_activity
from socialcrm_sentiment.enrich import enrich
from tests.conftest import Infra
from tests.fixtures.kafka import headers_of, publish, read_to_end, read_until
from tests.fixtures.payloads import x_tweet_event
from tests.fixtures.router_app import (
    AGENT_KEY,
    BACKLOG_SECONDS,
    Setup,
    json_when,
    new_tweet_id,
    read,
    router_setup,
    running,
    until_gone,
)
from tests.fixtures.waiting import eventually_async

pytestmark = [pytest.mark.security, pytest.mark.integration]

COMMANDS = contract.topic_of(routed_pb2.SlaCommand)
OTHER_AGENT_KEY = "it-router-billing-agent-key"


@pytest.fixture
async def setup(infra: Infra, tmp_path: Path) -> Setup:
    return await router_setup(infra, tmp_path)


def complaint_by(
    setup: Setup, author: str, at: datetime, conversation: str | None = None
) -> enriched_pb2.EnrichedInteraction:
    """A French complaint on X by ``author`` (a network identity of this test only)."""
    tweet_id = new_tweet_id()
    [interaction] = normalize_account_activity(
        x_tweet_event(tweet_id, text="Mon colis est en retard, c'est inadmissible !"),
        brand=setup.brand,
        ingested_at=at,
    )
    interaction.header.occurred_at.CopyFrom(contract.timestamp(at))
    interaction.author.handle = author
    interaction.author.channel_user_id = f"id-{author}"
    if conversation is not None:
        interaction.conversation_id = conversation
    enriched = enrich(interaction)
    enriched.enrichment.reach = 0.1
    return enriched


def command(
    event: enriched_pb2.EnrichedInteraction, at: datetime, agent: str
) -> routed_pb2.SlaCommand:
    """A reply command as anyone with write access to the topic could publish it."""
    return routed_pb2.SlaCommand(
        header=common_pb2.EventHeader(
            event_id=str(uuid.uuid4()),
            channel=event.header.channel,
            external_id=event.header.external_id,
            occurred_at=contract.timestamp(at),
            ingested_at=contract.timestamp(at),
            producer="router-api",
        ),
        interaction_event_id=event.header.event_id,
        conversation_id=event.interaction.conversation_id,
        reply=routed_pb2.ReplyCommand(agent_id=agent, text="C'est réglé"),
    )


def erase(
    event: enriched_pb2.EnrichedInteraction, at: datetime, author_keys: Sequence[str] = ()
) -> routed_pb2.SlaCommand:
    """crm-sink's erase command for an interaction it recorded (naming the person's network
    accounts: ``author_keys``)."""
    return routed_pb2.SlaCommand(
        header=common_pb2.EventHeader(
            event_id=contract.derived_event_id(event.header.event_id, "erase"),
            external_id=event.header.event_id,
            occurred_at=contract.timestamp(at),
            ingested_at=contract.timestamp(at),
            producer="crm-sink",
        ),
        interaction_event_id=event.header.event_id,
        conversation_id=event.interaction.conversation_id,
        erase=routed_pb2.EraseCommand(author_keys=author_keys),
    )


async def test_a_command_of_an_invented_agent_is_dead_lettered_with_its_reason(
    infra: Infra, setup: Setup
) -> None:
    start = setup.clock.now
    event = complaint_by(setup, f"a-{uuid.uuid4().hex[:8]}", start)
    event_id = event.header.event_id
    async with running(setup.settings, setup.clock) as router:
        await publish(infra.kafka.bootstrap, event)
        await json_when(router, f"/v1/interactions/{event_id}", lambda _: True)
        setup.clock.now = start + timedelta(seconds=10)  # past the 3 s deadline...
        forged = command(event, start + timedelta(seconds=1), "invented-agent")  # ...back-dated
        await publish(infra.kafka.bootstrap, forged)
        key = event.interaction.conversation_id.encode()
        dead = await read_until(
            infra.kafka.bootstrap,
            f"{COMMANDS}.dlq",
            lambda found: bool(found),
            keep=lambda r: r.key == key and b"invented-agent" in headers_of(r)["dlq.reason"],
        )
        assert dead, "the forged command was not dead-lettered"
        assert headers_of(dead[0])["dlq.error_type"] == b"unknown_agent"
        state = (await router.get(f"/v1/interactions/{event_id}")).json()
        assert state["first_response_at"] is None
    published = await read(
        infra.kafka.bootstrap,
        reply_pb2.Reply,
        lambda m: m.header.event_id == forged.header.event_id,
        expected=1,
        wait_seconds=2,
    )
    assert published == []


async def test_a_back_dated_command_or_reply_cannot_make_a_breached_sla_met(
    infra: Infra, setup: Setup
) -> None:
    start = setup.clock.now
    by_command = complaint_by(setup, f"b-{uuid.uuid4().hex[:8]}", start)
    by_tool = complaint_by(setup, f"c-{uuid.uuid4().hex[:8]}", start)
    # SLAs of seconds here: the clock skew tolerated shrinks with them (60 s by default).
    settings = setup.settings.model_copy(update={"router_clock_skew_seconds": 0.5})
    async with running(settings, setup.clock) as router:
        await publish(infra.kafka.bootstrap, by_command, by_tool)
        for event in (by_command, by_tool):
            await json_when(router, f"/v1/interactions/{event.header.event_id}", lambda _: True)
        setup.clock.now = start + timedelta(seconds=4)  # the 3 s deadline passed: level 1
        for event in (by_command, by_tool):
            await json_when(
                router,
                f"/v1/interactions/{event.header.event_id}",
                lambda s: s["escalation_level"] == 1,
            )
        # An agent that exists, a time before the deadline: what a stolen credential allows.
        back_dated = command(by_command, start + timedelta(seconds=1), "agent-7")
        tool = reply_pb2.Reply(
            header=common_pb2.EventHeader(
                event_id=str(uuid.uuid4()),
                channel=by_tool.header.channel,
                external_id="tool:forged",
                occurred_at=contract.timestamp(start + timedelta(seconds=1)),
                ingested_at=contract.timestamp(start + timedelta(seconds=1)),
                producer="crm-tool",
            ),
            interaction_event_id=by_tool.header.event_id,
            conversation_id=by_tool.interaction.conversation_id,
            agent_id="agent-9",
            text="Réponse antidatée",
        )
        await publish(infra.kafka.bootstrap, back_dated, tool)
        [reply] = await read(
            infra.kafka.bootstrap,
            reply_pb2.Reply,
            lambda m: m.header.event_id == back_dated.header.event_id,
            expected=1,
        )
        answered = await json_when(
            router,
            f"/v1/interactions/{by_tool.header.event_id}",
            lambda s: s["first_response_at"] is not None,
        )
    assert reply.sla_status == reply_pb2.SLA_STATUS_BREACHED
    assert reply.first_response_seconds == 4.0  # counted when the owner applied it
    assert datetime.fromisoformat(answered["first_response_at"]) == start + timedelta(seconds=4)


async def test_an_erasure_reaches_the_messages_of_the_person_in_flight(
    infra: Infra, setup: Setup
) -> None:
    start = setup.clock.now
    author = f"erased-{uuid.uuid4().hex[:8]}"
    erased_one = complaint_by(setup, author, start)
    routed_before = complaint_by(setup, author, start)  # not in crm-sink's plan yet
    async with running(setup.settings, setup.clock) as router:
        await publish(infra.kafka.bootstrap, erased_one, routed_before)
        for event in (erased_one, routed_before):
            await json_when(router, f"/v1/interactions/{event.header.event_id}", lambda _: True)
        setup.clock.now = start + timedelta(seconds=2)
        await publish(infra.kafka.bootstrap, erase(erased_one, setup.clock.now))
        await until_gone(router, f"/v1/interactions/{erased_one.header.event_id}")
        # Sent before the erasure, read after it: in the same conversation and in another.
        same_conversation = complaint_by(
            setup, author, start + timedelta(seconds=1), erased_one.interaction.conversation_id
        )
        elsewhere = complaint_by(setup, author, start + timedelta(seconds=1))
        late = [same_conversation, elsewhere]
        await publish(infra.kafka.bootstrap, *late)
        late_ids = {e.header.event_id for e in late}
        await read(
            infra.kafka.bootstrap,
            routed_pb2.RoutedInteraction,
            lambda m: m.header.event_id in late_ids and m.routing.rules_version == "it-1",
            expected=2,
        )
        await until_gone(router, f"/v1/interactions/{routed_before.header.event_id}")
        keys = {e.header.event_id.encode() for e in [erased_one, routed_before, *late]}

        async def all_written() -> list[tuple[bytes | None, bytes | None]] | None:
            records = await read_to_end(infra.kafka.bootstrap, setup.settings.router_state_topic)
            mine = [(r.key, r.value) for r in records if r.key in keys]
            latest = {key: value for key, value in mine}
            return mine if set(latest) == keys else None

        written = await eventually_async(all_written, BACKLOG_SECONDS)
        for event in late:
            assert (
                await router.get(f"/v1/interactions/{event.header.event_id}")
            ).status_code == 404
    latest = {key: value for key, value in written}
    for key, value in latest.items():
        assert value is not None, key
        assert author.encode() not in value, key
        assert routed_pb2.InteractionSlaState.FromString(value).status == "erased"
    for key, value in written:
        if key in {e.header.event_id.encode() for e in late}:
            assert value is None or author.encode() not in value  # never held, not even once


async def test_an_erasure_naming_the_person_reaches_their_message_with_no_state_held(
    infra: Infra, setup: Setup
) -> None:
    """The erased interaction left the router no state (it needed no response, or its state
    expired): the author is known from the keys the command names, not from state."""
    start = setup.clock.now
    author = f"erased-{uuid.uuid4().hex[:8]}"
    never_held = complaint_by(setup, author, start)  # recorded by crm-sink, not by the router
    in_flight = complaint_by(setup, author, start + timedelta(seconds=1))
    named = contract.author_key(in_flight.header.channel, f"id-{author}", author)
    assert named is not None
    tombstone = f"erased-author:{named}".encode()
    state_topic = setup.settings.router_state_topic
    async with running(setup.settings, setup.clock) as router:
        setup.clock.now = start + timedelta(seconds=2)
        await publish(infra.kafka.bootstrap, erase(never_held, setup.clock.now, [named]))

        async def tombstone_written() -> bool | None:
            records = await read_to_end(infra.kafka.bootstrap, state_topic)
            return True if any(r.key == tombstone and r.value for r in records) else None

        await eventually_async(tombstone_written, BACKLOG_SECONDS)
        await publish(infra.kafka.bootstrap, in_flight)
        key = in_flight.header.event_id.encode()

        async def in_flight_written() -> list[bytes | None] | None:
            records = await read_to_end(infra.kafka.bootstrap, state_topic)
            return [r.value for r in records if r.key == key] or None

        written = await eventually_async(in_flight_written, BACKLOG_SECONDS)
        assert (
            await router.get(f"/v1/interactions/{in_flight.header.event_id}")
        ).status_code == 404
        records = await read_to_end(infra.kafka.bootstrap, state_topic)
    assert not any(r.key == never_held.header.event_id.encode() for r in records)
    for value in written:  # never held with the person's handle, not even once
        assert value is not None
        assert author.encode() not in value
        assert routed_pb2.InteractionSlaState.FromString(value).status == "erased"


async def test_an_agent_works_its_own_queues_only_and_replies_are_rate_limited(
    infra: Infra, setup: Setup
) -> None:
    settings = setup.settings.model_copy(
        update={
            "api_keys": SecretStr(f"{AGENT_KEY}=agent:agent-7;{OTHER_AGENT_KEY}=agent:agent-8"),
            "router_agent_queues": "agent-7=customer-service-fr;agent-8=billing",
        }
    )
    event = complaint_by(setup, f"d-{uuid.uuid4().hex[:8]}", setup.clock.now)
    path = f"/v1/interactions/{event.header.event_id}"
    async with running(settings, setup.clock) as router:
        await publish(infra.kafka.bootstrap, event)
        await json_when(router, path, lambda _: True)
        other = await router.post(
            f"{path}/replies",
            json={"text": "Je m'en occupe"},
            headers={"Authorization": f"Bearer {OTHER_AGENT_KEY}"},
        )
        assert other.status_code == 403, other.text
        assert "customer-service-fr" in other.json()["detail"]
        statuses = [
            (await router.post(f"{path}/replies", json={"text": f"Réponse {n}"})).status_code
            for n in range(10)
        ]
        assert statuses == [202] * 10
        refused = await router.post(f"{path}/replies", json={"text": "Encore une"})
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
