"""The owner's reply commands read again by a successor that restored a state flushed after
them (the replica died before committing the offset), with a fake clock and a fake store (no
I/O): the Reply already published is not published again, with other content."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from socialcrm.v1 import routed_pb2
from socialcrm_router.sla import APPLIED_COMMANDS_KEPT
from tests.fixtures.router_owner import (
    Owner,
    complaint,
    erase_command,
    owner_at,
    replies,
    reply_command,
)
from tests.unit.test_router_rules import MONDAY_MORNING


def successor_of(o: Owner) -> Owner:
    """A replica taking the partition over: it restores what the changelog holds."""
    successor = owner_at(o.clock.now, set())
    successor.store.changelog = dict(o.store.changelog)
    asyncio.run(successor.owner.on_assigned({0}))
    return successor


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Nous regardons", ""),  # a first response
        ("C'est réglé", "resolved"),  # a reply that resolves the case
        ("", "resolved"),  # a status change alone (POST /status)
    ],
)
def test_a_reply_command_read_again_after_its_state_was_flushed_publishes_nothing(
    text: str, status: str
) -> None:
    o = owner_at(MONDAY_MORNING, {0})
    event = complaint(MONDAY_MORNING)
    asyncio.run(o.router.handle(event, o.on(0)))
    o.clock.now += timedelta(minutes=20)
    command = reply_command(event, o.clock.now, text=text, status=status)
    [reply] = replies(asyncio.run(o.router.handle_command(command, o.on(0))))
    assert reply.header.event_id == command.header.event_id
    flushed = o.store.changelog[(0, event.header.event_id)]

    successor = successor_of(o)
    successor.clock.now += timedelta(seconds=5)
    assert asyncio.run(successor.router.handle_command(command, successor.on(0))) == []
    # Nothing changed either: the state is the one flushed.
    assert successor.store.changelog[(0, event.header.event_id)] == flushed


def test_a_reply_command_to_a_closed_case_read_again_after_an_erasure_publishes_nothing() -> None:
    """The marker became an erased one meanwhile: the Reply would go out again without its
    channel or queue, so the marker remembers the command too (its id is nothing personal)."""
    o = owner_at(MONDAY_MORNING, {0})
    event = complaint(MONDAY_MORNING)
    asyncio.run(o.router.handle(event, o.on(0)))
    o.clock.now += timedelta(minutes=1)
    resolve = reply_command(event, o.clock.now, status="resolved", text="")
    asyncio.run(o.router.handle_command(resolve, o.on(0)))
    o.clock.now += timedelta(minutes=1)
    late = reply_command(event, o.clock.now, text="Encore une chose")
    [reply] = replies(asyncio.run(o.router.handle_command(late, o.on(0))))
    assert not reply.first_response
    asyncio.run(o.router.handle_command(erase_command(event, o.clock.now), o.on(0)))
    marker = o.store.data[0][event.header.event_id]
    assert marker.status == "erased"
    assert list(marker.applied_commands) == [resolve.header.event_id, late.header.event_id]

    successor = successor_of(o)
    for command in (resolve, late):
        assert asyncio.run(successor.router.handle_command(command, successor.on(0))) == []


def test_the_commands_a_state_remembers_are_the_last_few() -> None:
    o = owner_at(MONDAY_MORNING, {0})
    event = complaint(MONDAY_MORNING)
    asyncio.run(o.router.handle(event, o.on(0)))
    commands = []
    for _ in range(APPLIED_COMMANDS_KEPT + 5):
        o.clock.now += timedelta(minutes=1)
        commands.append(reply_command(event, o.clock.now))
        asyncio.run(o.router.handle_command(commands[-1], o.on(0)))
    state = o.store.data[0][event.header.event_id]
    kept = [c.header.event_id for c in commands[-APPLIED_COMMANDS_KEPT:]]
    assert list(state.applied_commands) == kept


def test_a_resolved_interaction_read_again_escalates_no_more_on_the_owner_or_a_successor() -> None:
    """Level 1 fired, then the case was resolved: a redelivery of the interaction (after a
    crash upstream) brings no timer back, on its owner or on a replica taking it over."""
    o = owner_at(MONDAY_MORNING, {0})
    event = complaint(MONDAY_MORNING)
    asyncio.run(o.router.handle(event, o.on(0)))
    o.clock.now += timedelta(hours=5)  # past the 4 h SLA: level 1 is due
    [level_1] = [m for m in asyncio.run(o.punctuate()) if isinstance(m, routed_pb2.Escalation)]
    assert level_1.level == 1
    resolve = reply_command(event, o.clock.now, status="resolved", text="")
    asyncio.run(o.router.handle_command(resolve, o.on(0)))

    successor = successor_of(o)
    for replica in (o, successor):
        outputs = asyncio.run(replica.router.handle(event, replica.on(0)))
        assert [type(m) for m in outputs] == [routed_pb2.RoutedInteraction]
        replica.clock.now += timedelta(hours=3)  # past the second level too
        assert asyncio.run(replica.punctuate()) == []
