"""The owner's state over time with a fake clock and a fake store (no I/O): every kind of
state expires, erasures reach what arrives later, forged commands and replies change
nothing they should not."""

from __future__ import annotations

import asyncio
import random
from collections.abc import ItemsView, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.state import PartitionedStore
from socialcrm.v1 import common_pb2, enriched_pb2, reply_pb2, routed_pb2
from socialcrm_router.erasures import ErasedAuthors
from socialcrm_router.expiry import (
    ANSWERED,
    AWAITING_INTERACTION,
    ERASED_AUTHOR,
    MARKER,
    OPEN,
    Horizons,
    kind_of,
)
from socialcrm_router.handlers import Router
from socialcrm_router.ownership import SlaOwner
from socialcrm_router.permissions import AgentQueues
from socialcrm_router.plausibility import IMPLAUSIBLE_TIME, UNKNOWN_AGENT, Plausibility
from socialcrm_router.reply_desk import NotTracked, ReplyDesk, view_keeps
from socialcrm_router.rules import RuleSet, parse_rules
from socialcrm_router.rules_file import RulesSource
from socialcrm_router.timers import SlaTimers
from tests.fixtures import events
from tests.unit.test_router_rules import MONDAY_MORNING, RULES

HOUR = 3600.0
HORIZONS = Horizons(state_ttl=72 * HOUR, marker_retention=168 * HOUR, erasure_horizon=24 * HOUR)
AGENT = "agent-7"


class FakeStore:
    """PartitionedStore's surface as the owner uses it, over dicts; ``changelog`` is what
    compaction keeps of the changelog (the last value of each key, tombstones removed)."""

    def __init__(self) -> None:
        self.data: dict[int, dict[str, routed_pb2.InteractionSlaState]] = {}
        self.changelog: dict[tuple[int, str], bytes] = {}
        self.on_restored: Any = None

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self.data)

    def get(self, partition: int, key: str) -> routed_pb2.InteractionSlaState | None:
        return self.data[partition].get(key)

    def items(self, partition: int) -> ItemsView[str, routed_pb2.InteractionSlaState]:
        return self.data[partition].items()

    def put(self, partition: int, key: str, value: routed_pb2.InteractionSlaState | None) -> None:
        if value is None:
            self.data[partition].pop(key, None)
            self.changelog.pop((partition, key), None)
        else:
            self.data[partition][key] = value
            self.changelog[(partition, key)] = value.SerializeToString()

    async def assign(self, partitions: set[int]) -> None:
        for partition in partitions - set(self.data):
            self.data[partition] = {
                key: routed_pb2.InteractionSlaState.FromString(value)
                for (p, key), value in self.changelog.items()
                if p == partition
            }
            self.on_restored(partition, self.data[partition].items())

    def revoke(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.data.pop(partition, None)

    lose = revoke


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rec:
    """The part of a ConsumerRecord the handlers read."""

    partition: int
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class Rules:
    current: RuleSet


@dataclass
class Owner:
    clock: FakeClock
    store: FakeStore
    owner: SlaOwner
    router: Router
    erasures: ErasedAuthors

    def on(self, partition: int) -> Any:
        return cast(Any, Rec(partition))

    def kinds(self) -> dict[str, int]:
        return self.owner.live_keys()

    async def punctuate(self) -> Sequence[Message]:
        return await self.owner.punctuate(set(self.store.owned))


def owner_at(now: datetime, partitions: set[int]) -> Owner:
    clock, store = FakeClock(now), FakeStore()
    erasures = ErasedAuthors(HORIZONS.erasure_horizon)
    owner = SlaOwner(
        cast(PartitionedStore[routed_pb2.InteractionSlaState], store),
        SlaTimers(HORIZONS),
        clock,
        1.0,
        erasures,
    )
    plausibility = Plausibility(frozenset({AGENT}), timedelta(seconds=60))
    router = Router(cast(RulesSource, Rules(parse_rules(RULES))), owner, clock, plausibility)
    asyncio.run(owner.on_assigned(partitions))
    return Owner(clock, store, owner, router, erasures)


def complaint(
    at: datetime, *, author: str = "", conversation: str | None = None
) -> enriched_pb2.EnrichedInteraction:
    """A French complaint on X (queue cs-fr, 4 h SLA, second level 2 h later)."""
    item = events.interaction(
        occurred_at=at,
        conversation_id=conversation,
        author=common_pb2.Author(handle=author, channel_user_id=f"id-{author}") if author else None,
    )
    return events.enriched(item, language="fr", reach=0.1, sentiment_score=-0.6)


def reply_command(
    event: enriched_pb2.EnrichedInteraction,
    at: datetime,
    *,
    agent: str = AGENT,
    status: str = "",
    text: str = "Nous regardons",
) -> routed_pb2.SlaCommand:
    return routed_pb2.SlaCommand(
        header=events.header(occurred_at=at, producer="router-api"),
        interaction_event_id=event.header.event_id,
        conversation_id=event.interaction.conversation_id,
        reply=routed_pb2.ReplyCommand(agent_id=agent, text=text, status=status),
    )


def erase_command(event: enriched_pb2.EnrichedInteraction, at: datetime) -> routed_pb2.SlaCommand:
    return routed_pb2.SlaCommand(
        header=events.header(occurred_at=at, producer="crm-sink"),
        interaction_event_id=event.header.event_id,
        conversation_id=event.interaction.conversation_id,
        erase=routed_pb2.EraseCommand(),
    )


def tool_reply(event: enriched_pb2.EnrichedInteraction, at: datetime) -> reply_pb2.Reply:
    return reply_pb2.Reply(
        header=events.header(occurred_at=at, producer="crm-tool"),
        interaction_event_id=event.header.event_id,
        conversation_id=event.interaction.conversation_id,
        agent_id="agent-in-crm",
        text="Réponse de l'outil",
    )


def replies(outputs: Sequence[Message]) -> list[reply_pb2.Reply]:
    return [m for m in outputs if isinstance(m, reply_pb2.Reply)]


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


def test_a_reply_read_before_its_interaction_cannot_date_its_answer_before_it() -> None:
    o = owner_at(MONDAY_MORNING, {0})
    event = complaint(MONDAY_MORNING)
    forged = tool_reply(event, MONDAY_MORNING - timedelta(days=1))
    o.clock.now += timedelta(minutes=2)
    asyncio.run(o.router.handle_reply(forged, o.on(0)))
    asyncio.run(o.router.handle(event, o.on(0)))
    state = o.store.data[0][event.header.event_id]
    assert state.first_response_at.ToDatetime(tzinfo=UTC) == o.clock.now
