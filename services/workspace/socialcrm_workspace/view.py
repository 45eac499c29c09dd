"""The workspace's view of open interactions, rebuilt from the topics (pure: no I/O).

``social.routed.v1`` opens an item (when it needs a response), ``social.escalations.v1``
raises its escalation level, ``social.replies.v1`` records the answer and its SLA outcome:
a reply with text, or a status ``pending`` or ``resolved``, takes the item off every list.
The three topics are read independently, so a reply may come before its interaction: the
view remembers that the interaction was closed and never opens it afterwards.

The view is bounded: items (open or closed) expire ``ttl`` after their last change, as the
router forgets an open interaction's SLA state after its inactivity horizon, and beyond
``max_items`` the item changed longest ago goes first.

An agent sees the items of the queues it may work, as the router says (``GET
/v1/agents/me``, asked at sign-in): an item is visible when its queue, its team or the queue
it was escalated to is among those names, or when they hold ``*`` (every queue).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from socialcrm.v1 import common_pb2, reply_pb2, routed_pb2

# A status change that means nobody has to act on the item now.
CLOSING_STATUSES = frozenset({"pending", "resolved"})
# Among the names an agent may work: every queue (the router's ROUTER_AGENT_QUEUES ``*``).
ANY_QUEUE = "*"
EVERY_QUEUE = frozenset({ANY_QUEUE})


def _enum_name(enum_name: str, prefix: str) -> str:
    """``PRIORITY_HIGH`` -> ``high``, ``CHANNEL_GOOGLE_REVIEWS`` -> ``google_reviews``."""
    return enum_name.removeprefix(prefix).lower()


@dataclass(frozen=True)
class ReplyOutcome:
    """A Reply as the router's owner published it."""

    event_id: str
    agent_id: str
    text: str
    is_private: bool
    status: str
    first_response: bool
    first_response_seconds: float
    sla_status: str
    at: datetime


@dataclass(frozen=True)
class Item:
    """One routed interaction, with what the workspace shows of it."""

    event_id: str
    conversation_id: str
    channel: str
    external_id: str
    occurred_at: datetime
    text: str
    is_public: bool
    author_handle: str
    author_name: str
    author_user_id: str
    author_verified: bool
    author_followers: int
    brand: str
    queue: str
    team: str
    priority: str
    priority_rank: int
    sla_deadline: datetime
    language: str
    polarity: str
    sentiment_score: float
    intent: str
    reach: float
    virality: float
    escalated: bool
    escalation_level: int
    escalation_reason: str
    escalated_to: str
    next_best_channel: str
    customer_expectation: str
    needs_response: bool
    open: bool = True
    replies: tuple[ReplyOutcome, ...] = ()
    changed_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Filters:
    """What an agent narrows a list to; empty fields take everything."""

    queue: str = ""
    channel: str = ""
    language: str = ""
    escalated: bool = False


@dataclass(frozen=True)
class Change:
    """What a record changed: the SSE feed tells the pages of the agents who may see it."""

    event_id: str
    conversation_id: str
    kind: str  # "opened", "escalated", "answered", "closed", "resync"
    # The item's queue, team and escalation queue, once changed (``names_of``).
    names: frozenset[str] = frozenset()

    def visible_to(self, allowed: frozenset[str]) -> bool:
        """Whether an agent working ``allowed`` is told; a resync concerns everyone."""
        return self.kind == "resync" or may_see(self.names, allowed)


def names_of(item: Item) -> frozenset[str]:
    """The names under which ``item`` is worked: its queue, its team, where it escalated."""
    return frozenset(n for n in (item.queue, item.team, item.escalated_to) if n)


def may_see(names: frozenset[str], allowed: frozenset[str]) -> bool:
    """Whether an agent working ``allowed`` (queue or team names, ``*`` all) sees an item
    worked under ``names``."""
    return ANY_QUEUE in allowed or bool(names & allowed)


def visible(item: Item, allowed: frozenset[str]) -> bool:
    return may_see(names_of(item), allowed)


def _change(item: Item, kind: str) -> Change:
    return Change(item.event_id, item.conversation_id, kind, names_of(item))


def item_of(routed: routed_pb2.RoutedInteraction, now: datetime) -> Item:
    interaction = routed.enriched.interaction
    enrichment = routed.enriched.enrichment
    routing = routed.routing
    return Item(
        event_id=routed.header.event_id,
        conversation_id=interaction.conversation_id,
        channel=_enum_name(common_pb2.Channel.Name(routed.header.channel), "CHANNEL_"),
        external_id=routed.header.external_id,
        occurred_at=routed.header.occurred_at.ToDatetime(tzinfo=UTC),
        text=interaction.text,
        is_public=interaction.is_public,
        author_handle=interaction.author.handle,
        author_name=interaction.author.display_name,
        author_user_id=interaction.author.channel_user_id,
        author_verified=interaction.author.verified,
        author_followers=interaction.author.followers,
        brand=interaction.brand,
        queue=routing.queue,
        team=routing.team,
        priority=_enum_name(common_pb2.Priority.Name(routing.priority), "PRIORITY_"),
        priority_rank=int(routing.priority),
        sla_deadline=routing.sla_deadline.ToDatetime(tzinfo=UTC),
        language=enrichment.language or "und",
        polarity=_enum_name(common_pb2.Polarity.Name(enrichment.polarity), "POLARITY_"),
        sentiment_score=round(enrichment.sentiment_score, 2),
        intent=_enum_name(common_pb2.Intent.Name(enrichment.intent), "INTENT_"),
        reach=enrichment.reach,
        virality=enrichment.virality,
        escalated=routing.escalated,
        escalation_level=0,
        escalation_reason=routing.escalation_reason,
        escalated_to="",
        next_best_channel=routing.next_best_channel,
        customer_expectation=routing.customer_expectation,
        needs_response=routing.needs_response,
        changed_at=now,
    )


def outcome_of(reply: reply_pb2.Reply) -> ReplyOutcome:
    return ReplyOutcome(
        event_id=reply.header.event_id,
        agent_id=reply.agent_id,
        text=reply.text,
        is_private=reply.is_private,
        status=reply.status,
        first_response=reply.first_response,
        first_response_seconds=reply.first_response_seconds,
        sla_status=_enum_name(reply_pb2.SlaStatus.Name(reply.sla_status), "SLA_STATUS_"),
        at=reply.header.occurred_at.ToDatetime(tzinfo=UTC),
    )


def closes(outcome: ReplyOutcome) -> bool:
    """Whether a reply takes its item off the lists: an answer, or a wait or a resolution."""
    return bool(outcome.text) or outcome.status in CLOSING_STATUSES


class OpenView:
    """Items by event id; the open ones make the lists."""

    def __init__(self, *, ttl: timedelta, max_items: int) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._items: dict[str, Item] = {}
        # Replies seen before their interaction, by interaction event id.
        self._early: dict[str, list[ReplyOutcome]] = {}
        self._early_at: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._items)

    def open_count(self) -> int:
        return sum(1 for item in self._items.values() if item.open)

    def get(self, event_id: str) -> Item | None:
        return self._items.get(event_id)

    def apply_routed(self, routed: routed_pb2.RoutedInteraction, now: datetime) -> Change | None:
        event_id = routed.header.event_id
        if event_id in self._items:
            return None  # a redelivery: the first routing stands, later changes kept
        item = item_of(routed, now)
        early = tuple(self._early.pop(event_id, ()))
        self._early_at.pop(event_id, None)
        item = replace(
            item,
            replies=early,
            open=item.needs_response and not any(closes(r) for r in early),
        )
        self._items[event_id] = item
        self._bound()
        return _change(item, "opened") if item.open else None

    def apply_escalation(self, escalation: routed_pb2.Escalation, now: datetime) -> Change | None:
        item = self._items.get(escalation.interaction_event_id)
        if item is None or escalation.level < item.escalation_level:
            return None
        escalated = replace(
            item,
            escalated=True,
            escalation_level=max(item.escalation_level, escalation.level),
            escalation_reason=escalation.reason or item.escalation_reason,
            escalated_to=escalation.to_queue,
            changed_at=now,
        )
        self._items[item.event_id] = escalated
        # Told to the agents of the queue it went to, as to those of the queue it came from.
        if not item.open:
            return None
        return Change(
            item.event_id, item.conversation_id, "escalated", names_of(item) | names_of(escalated)
        )

    def apply_reply(self, reply: reply_pb2.Reply, now: datetime) -> Change | None:
        outcome = outcome_of(reply)
        item = self._items.get(reply.interaction_event_id)
        if item is None:
            early = self._early.setdefault(reply.interaction_event_id, [])
            if all(r.event_id != outcome.event_id for r in early):
                early.append(outcome)
            self._early_at[reply.interaction_event_id] = now
            self._bound()
            return None
        if any(r.event_id == outcome.event_id for r in item.replies):
            return None
        still_open = item.open and not closes(outcome)
        if outcome.status == "open":
            still_open = item.needs_response and not any(r.text for r in (*item.replies, outcome))
        self._items[item.event_id] = replace(
            item, replies=(*item.replies, outcome), open=still_open, changed_at=now
        )
        return _change(item, "answered" if outcome.text else "closed")

    def expire(self, now: datetime) -> list[Change]:
        """Forget what has not changed for ``ttl``; the open items among them leave lists."""
        horizon = now - self.ttl
        gone = [item for item in self._items.values() if item.changed_at < horizon]
        for item in gone:
            del self._items[item.event_id]
        for event_id in [e for e, at in self._early_at.items() if at < horizon]:
            self._early.pop(event_id, None)
            del self._early_at[event_id]
        return [_change(i, "closed") for i in gone if i.open]

    def _bound(self) -> None:
        excess = len(self._items) + len(self._early) - self.max_items
        if excess <= 0:
            return
        # The early replies first (their interaction is older than the view), then the items
        # changed longest ago.
        for event_id in sorted(self._early_at, key=self._early_at.__getitem__)[:excess]:
            self._early.pop(event_id, None)
            del self._early_at[event_id]
            excess -= 1
        if excess > 0:
            oldest = sorted(self._items.values(), key=lambda i: i.changed_at)[:excess]
            for item in oldest:
                del self._items[item.event_id]

    def queue(
        self, filters: Filters = Filters(), allowed: frozenset[str] = EVERY_QUEUE
    ) -> list[Item]:
        """The open items of the queues in ``allowed`` that pass ``filters``, soonest
        deadline first, then the highest priority, then the oldest."""
        chosen = [
            i
            for i in self._items.values()
            if i.open and visible(i, allowed) and _passes(i, filters)
        ]
        return sorted(chosen, key=lambda i: (i.sla_deadline, -i.priority_rank, i.occurred_at))

    def conversation(
        self, conversation_id: str, allowed: frozenset[str] = EVERY_QUEUE
    ) -> list[Item]:
        """The items of a conversation the view holds in the queues of ``allowed``, oldest
        first."""
        found = [
            i
            for i in self._items.values()
            if i.conversation_id == conversation_id and visible(i, allowed)
        ]
        return sorted(found, key=lambda i: i.occurred_at)

    def choices(self, allowed: frozenset[str] = EVERY_QUEUE) -> dict[str, list[str]]:
        """The values the filters offer: those of the open items of the queues in
        ``allowed``."""
        open_items = [i for i in self._items.values() if i.open and visible(i, allowed)]
        return {
            # An item escalated to a queue is listed in it too (``_passes``).
            "queue": _distinct(q for i in open_items for q in (i.queue, i.escalated_to)),
            "channel": _distinct(i.channel for i in open_items),
            "language": _distinct(i.language for i in open_items),
        }


def _passes(item: Item, filters: Filters) -> bool:
    return (
        (not filters.queue or item.queue == filters.queue or item.escalated_to == filters.queue)
        and (not filters.channel or item.channel == filters.channel)
        and (not filters.language or item.language == filters.language)
        and (not filters.escalated or item.escalated)
    )


def _distinct(values: Iterable[str]) -> list[str]:
    return sorted({v for v in values if v})
