"""Routing decision for an enriched interaction (pure logic).

The first rule whose conditions hold picks the queue and priority; escalation triggers
(high risk) raise the priority and mark the decision escalated; a closed queue hands
over to its fallback with an expectation for the customer; the SLA table gives the
first-response deadline. Everything is a function of the rules, the event and ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, routed_pb2
from socialcrm_router.rules import (
    PRIORITY_RANK,
    WEEKDAYS,
    Condition,
    PriorityName,
    Queue,
    RuleSet,
    TimeWindow,
    packaged_rules,
)

PRIORITY_VALUES: dict[PriorityName, int] = {
    "low": common_pb2.PRIORITY_LOW,
    "normal": common_pb2.PRIORITY_NORMAL,
    "high": common_pb2.PRIORITY_HIGH,
    "urgent": common_pb2.PRIORITY_URGENT,
}


@cache  # a few dozen names; the descriptor lookups were 3 a routed event
def _enum_name(enum: str, value: int) -> str:
    """``CHANNEL_GOOGLE_REVIEWS`` -> ``google_reviews``."""
    name = common_pb2.DESCRIPTOR.enum_types_by_name[enum].values_by_number[value].name
    return name.removeprefix(f"{enum.upper()}_").lower()


def _optional_text(message: Message, field: str) -> str:
    """A string field that a newer contract may add; empty while it does not exist."""
    if field not in message.DESCRIPTOR.fields_by_name:
        return ""
    return str(getattr(message, field))


@dataclass(frozen=True)
class Facts:
    """What the rules can look at, in the rules' vocabulary."""

    channel: str
    language: str
    polarity: str
    sentiment: float
    intent: str
    urgency: float
    urgency_signals: frozenset[str]
    reach: float
    text: str
    brand: str
    tier: str
    is_public: bool


def facts_of(enriched: enriched_pb2.EnrichedInteraction, default_tier: str) -> Facts:
    enrichment, interaction = enriched.enrichment, enriched.interaction
    tier = _optional_text(enrichment, "customer_tier") or _optional_text(
        interaction, "customer_tier"
    )
    return Facts(
        channel=_enum_name("Channel", interaction.header.channel),
        language=enrichment.language,
        polarity=_enum_name("Polarity", enrichment.polarity),
        sentiment=enrichment.sentiment_score,
        intent=_enum_name("Intent", enrichment.intent),
        urgency=enrichment.urgency,
        urgency_signals=frozenset(s.lower() for s in enrichment.urgency_signals),
        reach=enrichment.reach,
        text=interaction.text.casefold(),
        brand=interaction.brand,
        tier=tier or default_tier,
        is_public=interaction.is_public,
    )


def in_window(window: TimeWindow, now: datetime) -> bool:
    local = now.astimezone(ZoneInfo(window.timezone))
    at, day = local.time().replace(tzinfo=None), WEEKDAYS[local.weekday()]
    if window.start <= window.end:
        return day in window.days and window.start <= at < window.end
    # Spans midnight: the early hours belong to the window opened the day before.
    if at >= window.start:
        return day in window.days
    previous_day = WEEKDAYS[(local.weekday() - 1) % 7]
    return at < window.end and previous_day in window.days


def next_opening(window: TimeWindow, now: datetime) -> datetime:
    """The next moment ``window`` opens after ``now`` (within a week)."""
    zone = ZoneInfo(window.timezone)
    local = now.astimezone(zone)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        opens = datetime.combine(day, window.start, tzinfo=zone)
        if opens > local and WEEKDAYS[day.weekday()] in window.days:
            return opens
    return local


def _any_of(allowed: tuple[str, ...] | None, value: str) -> bool:
    return allowed is None or value in allowed


def _at_least(bound: float | None, value: float) -> bool:
    return bound is None or value >= bound


def _at_most(bound: float | None, value: float) -> bool:
    return bound is None or value <= bound


def matches(condition: Condition, facts: Facts, now: datetime) -> bool:
    c = condition
    return (
        _any_of(c.channel, facts.channel)
        and _any_of(c.language, facts.language)
        and _any_of(c.polarity, facts.polarity)
        and _any_of(c.intent, facts.intent)
        and _any_of(c.brand, facts.brand)
        and _any_of(c.tier, facts.tier)
        and _at_least(c.sentiment_min, facts.sentiment)
        and _at_most(c.sentiment_max, facts.sentiment)
        and _at_least(c.urgency_min, facts.urgency)
        and _at_least(c.reach_min, facts.reach)
        and _at_most(c.reach_max, facts.reach)
        and (c.is_public is None or c.is_public == facts.is_public)
        and (
            c.urgency_signals is None
            or any(s.lower() in facts.urgency_signals for s in c.urgency_signals)
        )
        and (c.keywords is None or any(k.casefold() in facts.text for k in c.keywords))
        and (c.time_of_day is None or in_window(c.time_of_day, now))
    )


@dataclass(frozen=True)
class Placement:
    queue: str
    outside_hours: bool
    customer_expectation: str


def place(rules: RuleSet, requested: str, now: datetime) -> Placement:
    """The requested queue when open, else its fallback (followed while closed)."""
    name, queue = requested, rules.queues[requested]
    first: Queue = queue
    visited = {name}
    while queue.hours is not None and not in_window(queue.hours, now):
        if queue.fallback is None or queue.fallback in visited:
            break
        name = queue.fallback
        visited.add(name)
        queue = rules.queues[name]
    if name == requested:
        return Placement(requested, False, "")
    expectation = first.outside_hours_message
    if first.hours is not None and "{opens_at}" in expectation:
        opens_at = next_opening(first.hours, now)
        expectation = expectation.replace("{opens_at}", opens_at.strftime("%a %H:%M %Z"))
    return Placement(name, True, expectation)


def route(
    enriched: enriched_pb2.EnrichedInteraction,
    rules: RuleSet | None = None,
    now: datetime | None = None,
) -> routed_pb2.RoutedInteraction:
    """Decide queue, priority, SLA deadline, escalation and next best channel.

    ``rules`` defaults to the packaged rules and ``now`` (business hours, time of day)
    to the current time.
    """
    rules = rules or packaged_rules()
    now = now or datetime.now(UTC)
    facts = facts_of(enriched, rules.default_tier)
    # The last rule is a catch-all (checked at load), so a rule always matches.
    rule = next(r for r in rules.rules if matches(r.when, facts, now))
    triggers = [t for t in rules.escalations if matches(t.when, facts, now)]
    priority: PriorityName = max(
        [rule.priority, *(t.priority for t in triggers)], key=PRIORITY_RANK.__getitem__
    )
    placement = place(rules, rule.queue, now)
    occurred_at = enriched.interaction.header.occurred_at.ToDatetime(tzinfo=UTC)
    deadline = occurred_at + rules.sla_for(facts.channel, priority, facts.tier)
    header = common_pb2.EventHeader()
    header.CopyFrom(enriched.header)
    header.producer = "router"
    header.schema_version = contract.SCHEMA_VERSION
    return routed_pb2.RoutedInteraction(
        header=header,
        enriched=enriched,
        routing=routed_pb2.Routing(
            queue=placement.queue,
            priority=PRIORITY_VALUES[priority],  # type: ignore[arg-type]
            sla_deadline=contract.timestamp(deadline),
            needs_response=rule.needs_response,
            escalated=bool(triggers),
            escalation_reason="; ".join(t.reason for t in triggers),
            next_best_channel=(rule.next_best_channel or "") if facts.is_public else "",
            rule_id=rule.id,
            rules_version=rules.version,
            team=rules.queues[placement.queue].team,
            customer_tier=facts.tier,
            outside_business_hours=placement.outside_hours,
            requested_queue=rule.queue,
            customer_expectation=placement.customer_expectation,
            escalation_trigger_ids=[t.id for t in triggers],
        ),
    )
