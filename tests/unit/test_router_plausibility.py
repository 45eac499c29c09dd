"""Forged commands and replies against the owner's state, with a fake clock and a fake
store (no I/O): they are bad records or keep their plausible time, and change nothing they
should not."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta

import pytest

from socialcrm import contract
from socialcrm.v1 import reply_pb2, routed_pb2
from socialcrm_router.plausibility import IMPLAUSIBLE_TIME, UNKNOWN_AGENT
from tests.fixtures.router_owner import (
    AGENT,
    complaint,
    owner_at,
    replies,
    reply_command,
    tool_reply,
)
from tests.unit.test_router_rules import MONDAY_MORNING


@pytest.mark.parametrize(
    ("agent", "shift", "error_type"),
    [
        ("invented-agent", timedelta(minutes=1), UNKNOWN_AGENT),
        (AGENT, timedelta(hours=2), IMPLAUSIBLE_TIME),  # in the future
        (AGENT, -timedelta(hours=1), IMPLAUSIBLE_TIME),  # before the interaction
    ],
)
def test_a_forged_reply_command_is_a_bad_record_and_changes_nothing(
    agent: str, shift: timedelta, error_type: str
) -> None:
    """Issue 25, finding 5: a command no API could have published."""
    o = owner_at(MONDAY_MORNING, {0})
    event = complaint(MONDAY_MORNING)
    asyncio.run(o.router.handle(event, o.on(0)))
    o.clock.now += timedelta(minutes=30)
    before = o.store.data[0][event.header.event_id].SerializeToString()
    forged = reply_command(event, MONDAY_MORNING + shift, agent=agent)
    with pytest.raises(contract.ContractError) as refused:
        asyncio.run(o.router.handle_command(forged, o.on(0)))
    assert refused.value.error_type == error_type
    assert o.store.data[0][event.header.event_id].SerializeToString() == before


def test_a_back_dated_command_cannot_turn_a_breached_sla_into_met() -> None:
    o = owner_at(MONDAY_MORNING, {0})
    event = complaint(MONDAY_MORNING)
    asyncio.run(o.router.handle(event, o.on(0)))
    o.clock.now += timedelta(hours=4, minutes=1)
    [escalation] = [m for m in asyncio.run(o.punctuate()) if isinstance(m, routed_pb2.Escalation)]
    assert escalation.level == 1
    o.clock.now += timedelta(minutes=10)
    back_dated = reply_command(event, MONDAY_MORNING + timedelta(minutes=5))
    [reply] = replies(asyncio.run(o.router.handle_command(back_dated, o.on(0))))
    assert reply.sla_status == reply_pb2.SLA_STATUS_BREACHED
    assert reply.first_response_seconds == (o.clock.now - MONDAY_MORNING).total_seconds()


def test_a_forged_tool_reply_cannot_back_date_a_first_response() -> None:
    o = owner_at(MONDAY_MORNING, {0})
    event = complaint(MONDAY_MORNING)
    asyncio.run(o.router.handle(event, o.on(0)))
    o.clock.now += timedelta(hours=5)
    asyncio.run(o.punctuate())  # level 1 fired at the deadline
    asyncio.run(
        o.router.handle_reply(tool_reply(event, MONDAY_MORNING + timedelta(minutes=1)), o.on(0))
    )
    state = o.store.data[0][event.header.event_id]
    assert state.first_response_at.ToDatetime(tzinfo=UTC) == o.clock.now
    # A plausible tool reply keeps its own time.
    honest = complaint(o.clock.now)
    asyncio.run(o.router.handle(honest, o.on(0)))
    o.clock.now += timedelta(minutes=3)
    asyncio.run(
        o.router.handle_reply(tool_reply(honest, o.clock.now - timedelta(minutes=1)), o.on(0))
    )
    answered = o.store.data[0][honest.header.event_id].first_response_at.ToDatetime(tzinfo=UTC)
    assert answered == o.clock.now - timedelta(minutes=1)


def test_a_reply_read_before_its_interaction_cannot_date_its_answer_before_it() -> None:
    o = owner_at(MONDAY_MORNING, {0})
    event = complaint(MONDAY_MORNING)
    forged = tool_reply(event, MONDAY_MORNING - timedelta(days=1))
    o.clock.now += timedelta(minutes=2)
    asyncio.run(o.router.handle_reply(forged, o.on(0)))
    asyncio.run(o.router.handle(event, o.on(0)))
    state = o.store.data[0][event.header.event_id]
    assert state.first_response_at.ToDatetime(tzinfo=UTC) == o.clock.now
