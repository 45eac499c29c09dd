"""The owner's state over time with a fake clock and a fake store (no I/O): every kind of
state expires, in the owner's store, its changelog and every replica's view."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from typing import Any, cast

import pytest

from socialcrm.v1 import enriched_pb2, routed_pb2
from socialcrm_router.erasures import ErasedAuthors
from socialcrm_router.expiry import (
    ANSWERED,
    AWAITING_INTERACTION,
    ERASED_AUTHOR,
    MARKER,
    OPEN,
    kind_of,
)
from socialcrm_router.permissions import AgentQueues
from socialcrm_router.reply_desk import NotTracked, ReplyDesk, view_keeps
from tests.fixtures.router_owner import (
    HORIZONS,
    HOUR,
    Owner,
    complaint,
    erase_command,
    owner_at,
    reply_command,
    tool_reply,
)
from tests.unit.test_router_rules import MONDAY_MORNING


async def a_month_of_traffic(o: Owner, step: timedelta) -> dict[str, list[int]]:
    """One interaction every ``step`` for 30 fake days: some never answered (both levels
    fire), some answered and never resolved, some resolved, some with a reply read before
    an interaction that never comes, some authors erased; the owner punctuates at each
    step. The live keys per kind, once a fake day."""
    rng = random.Random(23)
    start = o.clock.now
    later: list[tuple[datetime, str, enriched_pb2.EnrichedInteraction, int]] = []
    daily: dict[str, list[int]] = {}
    per_day = int(timedelta(days=1) / step)
    for tick in range(30 * per_day):
        now = o.clock.now = start + tick * step
        partition = tick % 2
        event = complaint(now, author=f"p{tick}")
        await o.router.handle(event, o.on(partition))
        fate = rng.random()
        if fate < 0.3:
            later.append((now + timedelta(minutes=rng.randint(5, 300)), "reply", event, partition))
        elif fate < 0.5:
            at = now + timedelta(minutes=rng.randint(5, 300))
            later.append((at, "resolve", event, partition))
        elif fate < 0.55:
            stray = complaint(now)  # its interaction never comes
            await o.router.handle_reply(tool_reply(stray, now), o.on(partition))
        elif fate < 0.57:
            later.append((now + timedelta(minutes=1), "erase", event, partition))
        for _, action, answered, where in [item for item in later if item[0] <= now]:
            if action == "erase":
                command = erase_command(answered, now)
            else:
                command = reply_command(answered, now, status="resolved" * (action == "resolve"))
            await o.router.handle_command(command, o.on(where))
        later = [item for item in later if item[0] > now]
        await o.punctuate()
        if tick % per_day == 0:
            for kind, count in o.kinds().items():
                daily.setdefault(kind, []).append(count)
    return daily


def test_after_a_month_of_traffic_live_keys_per_kind_stay_bounded_and_so_does_a_restore() -> None:
    """Without expiry the answered and the fully escalated interactions stayed for ever, in
    memory, in the changelog and in every replica's view (issue 23, item 3)."""
    o = owner_at(MONDAY_MORNING, {0, 1})
    step = timedelta(minutes=4)
    daily = asyncio.run(a_month_of_traffic(o, step))
    day = timedelta(days=1) / step
    # Each kind: its share of the traffic times how long it lives (days), with a margin.
    # Open: until the second level (6 h) then 72 h; answered: 72 h after the answer
    # (within 5 h); markers (resolved, erased) and stray replies: 168 h; tombstones: 24 h.
    bounds = {
        OPEN: (0.43 * 3.25 + 0.5 * 5 / 24) * day * 1.2,
        ANSWERED: 0.3 * 3.2 * day * 1.2,
        MARKER: 0.22 * 7.2 * day * 1.2,
        AWAITING_INTERACTION: 0.05 * 7 * day * 1.2,
        ERASED_AUTHOR: 0.02 * 1 * day * 1.5,
    }
    final = o.kinds()
    for kind, bound in bounds.items():
        assert 0 < final[kind] <= bound, (kind, final[kind], bound)
        # Steady, not growing: the last week's level is the second week's.
        assert max(daily[kind][-7:]) <= 1.15 * max(daily[kind][7:14]) + 20, (kind, daily[kind])
    # The changelog (what a restore reads) holds the live keys only.
    assert len(o.store.changelog) == sum(final.values())
    restored = owner_at(o.clock.now, set())
    restored.store.changelog = dict(o.store.changelog)
    asyncio.run(restored.owner.on_assigned({0, 1}))
    assert restored.kinds() == final


def test_an_answered_interaction_never_resolved_expires_after_the_horizon_of_inactivity() -> None:
    o = owner_at(MONDAY_MORNING, {0})
    event = complaint(MONDAY_MORNING)
    key = event.header.event_id
    asyncio.run(o.router.handle(event, o.on(0)))
    o.clock.now += timedelta(minutes=10)
    asyncio.run(o.router.handle_command(reply_command(event, o.clock.now), o.on(0)))
    assert kind_of(o.store.data[0][key]) == ANSWERED
    o.clock.now += timedelta(hours=71)
    asyncio.run(o.punctuate())
    assert key in o.store.data[0]
    o.clock.now += timedelta(hours=1, seconds=1)
    asyncio.run(o.punctuate())
    assert key not in o.store.data[0]
    assert (0, key) not in o.store.changelog  # a tombstone: restores shrink too
    assert o.kinds()[ANSWERED] == 0


def test_an_unanswered_interaction_fires_both_levels_then_expires() -> None:
    o = owner_at(MONDAY_MORNING, {0})
    event = complaint(MONDAY_MORNING)
    asyncio.run(o.router.handle(event, o.on(0)))
    levels = []
    for _ in range(77):
        o.clock.now += timedelta(hours=1)
        levels += [
            m.level for m in asyncio.run(o.punctuate()) if isinstance(m, routed_pb2.Escalation)
        ]
    assert levels == [1, 2]
    assert o.kinds()[OPEN] == 1  # second level at 6 h, expiry 72 h after it: at 78 h
    o.clock.now += timedelta(hours=1)
    asyncio.run(o.punctuate())
    assert o.kinds()[OPEN] == 0


def test_the_api_view_holds_open_interactions_until_they_expire_and_notes_tombstones() -> None:
    """Every replica's view of the whole changelog is bounded as the owner's state is."""
    o = owner_at(MONDAY_MORNING, {0})
    event = complaint(MONDAY_MORNING, author="lea")
    asyncio.run(o.router.handle(event, o.on(0)))
    written = o.store.changelog[(0, event.header.event_id)]
    now = MONDAY_MORNING.timestamp()
    noted = ErasedAuthors(HORIZONS.erasure_horizon)
    assert view_keeps(written, HORIZONS, noted, now)
    # Its second level is due at 6 h: then 72 h without a change.
    assert view_keeps(written, HORIZONS, noted, now + 77 * HOUR)
    assert not view_keeps(written, HORIZONS, noted, now + 78 * HOUR)
    desk = ReplyDesk(
        cast(Any, {event.header.event_id: written}),
        cast(Any, None),
        lambda: MONDAY_MORNING + timedelta(hours=78),
        HORIZONS,
        AgentQueues(None),
        cast(Any, None),
    )
    with pytest.raises(NotTracked):
        desk.open_interaction(event.header.event_id)
    o.clock.now += timedelta(minutes=1)
    asyncio.run(o.router.handle_command(erase_command(event, o.clock.now), o.on(0)))
    [tombstone] = [v for (_, k), v in o.store.changelog.items() if k.startswith("erased-author:")]
    assert not view_keeps(tombstone, HORIZONS, noted, now)
    assert len(noted) == 1
