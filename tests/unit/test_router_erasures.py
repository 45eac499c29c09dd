"""An author's erasure in the owner's state, with a fake clock and a fake store (no I/O):
it reaches what arrives later and what another owner holds."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta

from socialcrm import contract
from socialcrm.v1 import routed_pb2
from socialcrm_router.erasures import ErasedAuthors
from socialcrm_router.expiry import ERASED_AUTHOR, kind_of
from socialcrm_router.reply_desk import view_keeps
from socialcrm_router.sla import next_due
from tests.fixtures.router_owner import HORIZONS, complaint, erase_command, owner_at
from tests.unit.test_router_rules import MONDAY_MORNING


def test_an_erasure_reaches_a_message_of_the_author_read_after_it() -> None:
    """Issue 25, finding 6: the person's message in flight when the erasure was requested,
    in the same conversation or another one (another partition)."""
    o = owner_at(MONDAY_MORNING, {0, 1})
    first = complaint(MONDAY_MORNING, author="sophie_b")
    routed_not_in_plan = complaint(MONDAY_MORNING, author="sophie_b")
    asyncio.run(o.router.handle(first, o.on(0)))
    asyncio.run(o.router.handle(routed_not_in_plan, o.on(1)))
    in_flight = complaint(
        MONDAY_MORNING + timedelta(seconds=5),
        author="sophie_b",
        conversation=first.interaction.conversation_id,
    )
    elsewhere = complaint(MONDAY_MORNING + timedelta(seconds=6), author="sophie_b")
    o.clock.now += timedelta(seconds=10)
    asyncio.run(o.router.handle_command(erase_command(first, o.clock.now), o.on(0)))
    asyncio.run(o.router.handle(in_flight, o.on(0)))
    asyncio.run(o.router.handle(elsewhere, o.on(1)))
    asyncio.run(o.punctuate())
    everything = b"".join(o.store.changelog.values())
    assert b"sophie_b" not in everything
    for event in (first, in_flight, elsewhere, routed_not_in_plan):
        key = event.header.event_id
        held = [states[key] for states in o.store.data.values() if key in states]
        assert [state.status for state in held] == ["erased"], key
    assert o.kinds()[ERASED_AUTHOR] == 1
    # The person writing again after the erasure is a new message, kept as any other.
    back = complaint(o.clock.now + timedelta(minutes=1), author="sophie_b")
    o.clock.now += timedelta(minutes=2)
    asyncio.run(o.router.handle(back, o.on(1)))
    assert o.store.data[1][back.header.event_id].author_handle == "sophie_b"


def test_a_tombstone_written_by_another_owner_applies_here() -> None:
    o = owner_at(MONDAY_MORNING, {1})
    held = complaint(MONDAY_MORNING, author="marc")
    asyncio.run(o.router.handle(held, o.on(1)))
    other = owner_at(MONDAY_MORNING, {0})
    mine = complaint(MONDAY_MORNING, author="marc")
    asyncio.run(other.router.handle(mine, other.on(0)))
    other.clock.now = o.clock.now = MONDAY_MORNING + timedelta(minutes=1)
    asyncio.run(other.router.handle_command(erase_command(mine, other.clock.now), other.on(0)))
    # What the read view of the whole changelog notes (app.py) reaches this owner.
    for (_, key), value in other.store.changelog.items():
        state = routed_pb2.InteractionSlaState.FromString(value)
        if kind_of(state) == ERASED_AUTHOR:
            o.erasures.note(key, state.closed_at.ToDatetime(tzinfo=UTC))
    asyncio.run(o.punctuate())
    assert o.store.data[1][held.header.event_id].status == "erased"
    assert not o.store.data[1][held.header.event_id].author_handle


def test_an_erasure_naming_its_authors_reaches_their_message_with_no_state_held() -> None:
    """Issue 25, finding 6: the erased interaction left no state (no response needed, or
    expired), so the owner learns the author from the keys crm-sink's command names."""
    o = owner_at(MONDAY_MORNING, {0, 1})
    never_held = complaint(MONDAY_MORNING, author="nina")
    in_flight = complaint(MONDAY_MORNING + timedelta(seconds=5), author="nina")
    author = in_flight.interaction.author
    command = erase_command(never_held, MONDAY_MORNING + timedelta(seconds=10))
    command.erase.author_keys.extend(
        [
            contract.author_key(in_flight.header.channel, author.channel_user_id, author.handle)
            or "",
            "not-a-key",
        ]
    )
    o.clock.now = MONDAY_MORNING + timedelta(seconds=10)
    asyncio.run(o.router.handle_command(command, o.on(0)))
    assert o.owner.get(0, never_held.header.event_id) is None
    assert o.kinds()[ERASED_AUTHOR] == 1
    asyncio.run(o.router.handle(in_flight, o.on(1)))
    state = o.store.data[1][in_flight.header.event_id]
    assert (state.status, state.author_handle, state.author_channel_user_id) == ("erased", "", "")
    assert next_due(state) is None
    o.clock.now += timedelta(hours=7)  # past both SLA levels: nothing fires
    assert asyncio.run(o.punctuate()) == []
    written = o.store.changelog[(1, in_flight.header.event_id)]
    view = ErasedAuthors(HORIZONS.erasure_horizon)
    assert not view_keeps(written, HORIZONS, view, MONDAY_MORNING.timestamp())
    assert b"nina" not in b"".join(o.store.changelog.values())
