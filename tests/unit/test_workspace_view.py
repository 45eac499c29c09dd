"""The workspace's view of open interactions: order by deadline, filters, what leaves, and
what an agent sees of it (the queues the router lets it work)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from socialcrm import contract
from socialcrm.v1 import common_pb2, reply_pb2, routed_pb2
from socialcrm_workspace.view import Change, Filters, OpenView, item_of, visible
from tests.fixtures import events

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def routed_in(
    minutes: float,
    *,
    queue: str = "customer-service-fr",
    channel: common_pb2.Channel.ValueType = common_pb2.CHANNEL_X,
    language: str = "fr",
    escalated: bool = False,
    needs_response: bool = True,
    priority: common_pb2.Priority.ValueType = common_pb2.PRIORITY_NORMAL,
    conversation_id: str | None = None,
    team: str = "customer-service",
) -> routed_pb2.RoutedInteraction:
    item = events.interaction(channel=channel, conversation_id=conversation_id)
    return events.routed(
        events.enriched(item, language=language),
        queue=queue,
        team=team,
        needs_response=needs_response,
        escalated=escalated,
        priority=priority,
        sla_deadline=contract.timestamp(NOW + timedelta(minutes=minutes)),
    )


def view_of(*routed: routed_pb2.RoutedInteraction) -> OpenView:
    view = OpenView(ttl=timedelta(hours=72), max_items=1000)
    for each in routed:
        view.apply_routed(each, NOW)
    return view


def ids(view: OpenView, filters: Filters | None = None) -> list[str]:
    return [item.event_id for item in view.queue(filters or Filters())]


def test_the_queue_is_ordered_by_sla_deadline_then_priority() -> None:
    late, soon, sooner = routed_in(90), routed_in(30), routed_in(5)
    urgent = routed_in(30, priority=common_pb2.PRIORITY_URGENT)
    view = view_of(late, soon, sooner, urgent)
    assert ids(view) == [
        sooner.header.event_id,
        urgent.header.event_id,
        soon.header.event_id,
        late.header.event_id,
    ]


def test_filters_by_queue_channel_language_and_escalation() -> None:
    fr = routed_in(10)
    en = routed_in(20, queue="customer-service-en", language="en")
    mail = routed_in(30, channel=common_pb2.CHANNEL_EMAIL)
    hot = routed_in(40, escalated=True)
    view = view_of(fr, en, mail, hot)
    assert ids(view, Filters(queue="customer-service-en")) == [en.header.event_id]
    assert ids(view, Filters(channel="email")) == [mail.header.event_id]
    assert ids(view, Filters(language="en")) == [en.header.event_id]
    assert ids(view, Filters(escalated=True)) == [hot.header.event_id]
    assert view.choices()["channel"] == ["email", "x"]


def test_an_escalation_raises_the_level_and_lists_the_item_in_the_queue_it_went_to() -> None:
    post = routed_in(10)
    view = view_of(post)
    escalation = routed_pb2.Escalation(
        header=events.header(),
        interaction_event_id=post.header.event_id,
        level=1,
        reason="sla_missed",
        to_queue="customer-service-lead",
    )
    change = view.apply_escalation(escalation, NOW)
    assert change is not None
    assert change.kind == "escalated"
    item = view.queue(Filters(queue="customer-service-lead"))[0]
    assert (item.escalated, item.escalation_level, item.escalated_to) == (
        True,
        1,
        "customer-service-lead",
    )


def test_an_answer_or_a_closing_status_takes_the_item_off_the_list() -> None:
    answered, resolved, pending, reopened = (routed_in(m) for m in (1, 2, 3, 4))
    view = view_of(answered, resolved, pending, reopened)
    view.apply_reply(
        events.reply(
            answered, text="On regarde", sla_status=reply_pb2.SLA_STATUS_MET, first_response=True
        ),
        NOW,
    )
    view.apply_reply(events.reply(resolved, text="", status="resolved"), NOW)
    view.apply_reply(events.reply(pending, text="", status="pending"), NOW)
    view.apply_reply(events.reply(reopened, text="", status="open"), NOW)
    assert ids(view) == [reopened.header.event_id]
    kept = view.get(answered.header.event_id)
    assert kept is not None
    assert not kept.open
    assert kept.replies[0].sla_status == "met"


def test_a_reply_read_before_its_interaction_keeps_it_off_the_list() -> None:
    post = routed_in(5)
    view = view_of()
    assert view.apply_reply(events.reply(post, text="Déjà répondu"), NOW) is None
    assert view.apply_routed(post, NOW) is None
    assert ids(view) == []
    assert view.get(post.header.event_id) is not None


def test_what_needs_no_response_is_never_listed_and_redeliveries_change_nothing() -> None:
    praise, post = routed_in(5, needs_response=False), routed_in(6)
    view = view_of(praise, post)
    assert view.apply_routed(post, NOW) is None
    reply = events.reply(post, text="Merci")
    assert view.apply_reply(reply, NOW) is not None
    assert view.apply_reply(reply, NOW) is None
    assert ids(view) == []
    assert len(view.get(post.header.event_id).replies) == 1  # type: ignore[union-attr]


def test_the_view_is_bounded_by_age_and_size() -> None:
    old, new = routed_in(5), routed_in(6)
    view = OpenView(ttl=timedelta(hours=1), max_items=2)
    view.apply_routed(old, NOW - timedelta(hours=2))
    view.apply_routed(new, NOW)
    gone = view.expire(NOW)
    assert [c.event_id for c in gone] == [old.header.event_id]
    assert ids(view) == [new.header.event_id]
    for minutes in (7, 8):
        view.apply_routed(routed_in(minutes), NOW + timedelta(minutes=minutes))
    assert len(view) == 2
    assert new.header.event_id not in ids(view)


def test_a_conversation_lists_its_items_oldest_first() -> None:
    first = routed_in(5, conversation_id="thread-1")
    second = routed_in(6, conversation_id="thread-1")
    other = routed_in(7)
    view = view_of(second, first, other)
    thread = view.conversation("thread-1")
    assert {i.event_id for i in thread} == {first.header.event_id, second.header.event_id}


def test_an_item_is_visible_by_its_queue_its_team_or_where_it_escalated() -> None:
    item = item_of(routed_in(10, queue="care-fr", team="care"), NOW)
    assert visible(item, frozenset({"*"}))
    assert visible(item, frozenset({"care-fr"}))
    assert visible(item, frozenset({"billing", "care"}))
    assert not visible(item, frozenset({"billing"}))
    assert not visible(item, frozenset())
    assert not visible(item, frozenset({""}))  # an empty name matches no empty field
    assert visible(replace(item, escalated_to="care-lead"), frozenset({"care-lead"}))


def test_an_agent_lists_and_is_offered_only_the_queues_it_works() -> None:
    fr = routed_in(10, queue="care-fr", team="care")
    bill = routed_in(20, queue="billing", team="billing", channel=common_pb2.CHANNEL_EMAIL)
    press = routed_in(
        30, queue="press", team="comms", conversation_id=fr.enriched.interaction.conversation_id
    )
    view = view_of(fr, bill, press)
    assert ids(view) == [e.header.event_id for e in (fr, bill, press)]  # the view itself: all
    care = frozenset({"care"})
    assert [i.event_id for i in view.queue(Filters(), care)] == [fr.header.event_id]
    assert view.queue(Filters(queue="billing"), care) == []
    assert view.choices(care) == {"queue": ["care-fr"], "channel": ["x"], "language": ["fr"]}
    assert view.choices(frozenset())["queue"] == []
    thread = view.conversation(fr.enriched.interaction.conversation_id, care)
    assert [i.event_id for i in thread] == [fr.header.event_id]


def test_changes_name_their_queues_and_an_escalation_both_ends() -> None:
    post = routed_in(10, queue="care-fr", team="care")
    view = OpenView(ttl=timedelta(hours=72), max_items=10)
    opened = view.apply_routed(post, NOW)
    assert opened is not None
    assert opened.names == {"care-fr", "care"}
    assert not opened.visible_to(frozenset({"billing"}))
    escalation = routed_pb2.Escalation(
        header=events.header(),
        interaction_event_id=post.header.event_id,
        level=1,
        to_queue="care-lead",
    )
    escalated = view.apply_escalation(escalation, NOW)
    assert escalated is not None
    assert escalated.visible_to(frozenset({"care-lead"}))
    assert escalated.visible_to(frozenset({"care-fr"}))
    assert [i.event_id for i in view.queue(Filters(), frozenset({"care-lead"}))] == [
        post.header.event_id
    ]
    assert view.choices(frozenset({"care-lead"}))["queue"] == ["care-fr", "care-lead"]
    answered = view.apply_reply(events.reply(post), NOW)
    assert answered is not None
    assert answered.visible_to(frozenset({"care-lead"}))
    assert not answered.visible_to(frozenset({"billing"}))
    assert Change("", "", "resync").visible_to(frozenset())  # everyone refetches
