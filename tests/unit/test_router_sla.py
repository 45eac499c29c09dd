"""SLA timers, escalations, reply metrics and outbound request shapes (no I/O)."""

from __future__ import annotations

from datetime import UTC, timedelta

from socialcrm import contract
from socialcrm.v1 import common_pb2, kpi_pb2, reply_pb2, routed_pb2
from socialcrm_router.decide import route
from socialcrm_router.expiry import Horizons
from socialcrm_router.outbound import outbound_request
from socialcrm_router.rules import parse_rules
from socialcrm_router.sla import (
    answered_at,
    awaiting_interaction,
    due_levels,
    erased,
    escalated,
    escalation_alert,
    escalation_event,
    escalations_due_by,
    is_closed,
    is_open,
    is_placeholder,
    next_due,
    record_reply,
    reply_message,
    sla_state_for,
    strictly_newer,
    with_early_replies,
)
from socialcrm_router.timers import SlaTimers
from tests.unit.test_router_rules import MONDAY_MORNING, RULES, enriched

T0 = MONDAY_MORNING


def horizons(marker_retention: float) -> Horizons:
    return Horizons(state_ttl=72 * 3600, marker_retention=marker_retention, erasure_horizon=3600)


def state_at_routing(reach: float = 0.1) -> routed_pb2.InteractionSlaState:
    rules = parse_rules(RULES)
    return sla_state_for(route(enriched(reach=reach), rules, T0), rules)


def test_the_timer_state_carries_the_deadline_and_both_escalation_levels() -> None:
    state = state_at_routing()
    assert state.sla_deadline.ToDatetime(tzinfo=UTC) == T0 + timedelta(hours=4)
    assert state.second_level_at.ToDatetime(tzinfo=UTC) == T0 + timedelta(hours=6)
    assert state.first_level_queue == "customer-service-lead"
    assert state.second_level_queue == "duty-manager"
    assert (state.escalation_level, state.status, state.revision) == (0, "open", 1)


def test_levels_fire_once_each_after_their_deadline() -> None:
    state = state_at_routing()
    assert due_levels(state, T0 + timedelta(hours=3, minutes=59)) == []
    assert due_levels(state, T0 + timedelta(hours=4)) == [1]
    after_first = escalated(state, 1)
    assert after_first.revision == state.revision + 1
    assert due_levels(after_first, T0 + timedelta(hours=5)) == []
    assert due_levels(after_first, T0 + timedelta(hours=6)) == [2]
    assert due_levels(escalated(after_first, 2), T0 + timedelta(days=3)) == []
    # After a long outage both levels are due at once.
    assert due_levels(state, T0 + timedelta(days=1)) == [1, 2]


def test_an_answered_interaction_never_escalates() -> None:
    outcome = record_reply(state_at_routing(), T0 + timedelta(minutes=5), has_text=True, status="")
    assert outcome.state is not None
    assert due_levels(outcome.state, T0 + timedelta(days=1)) == []


def test_escalation_events_go_to_the_lead_then_further_up_with_stable_ids() -> None:
    state = state_at_routing()
    now = T0 + timedelta(hours=4)
    first = escalation_event(state, 1, "no first response", now)
    second = escalation_event(state, 2, "still nothing", now)
    assert (first.to_queue, second.to_queue) == ("customer-service-lead", "duty-manager")
    assert first.from_queue == "cs-fr"
    assert first.header.event_id == escalation_event(state, 1, "x", now).header.event_id
    assert first.header.event_id != second.header.event_id
    alert = escalation_alert(first, "sla_escalation")
    assert alert.kind == "sla_escalation"
    assert alert.severity == kpi_pb2.SEVERITY_WARNING
    assert alert.alert_key == f"sla_escalation:{state.interaction_event_id}"
    assert list(alert.sample_event_ids) == [state.interaction_event_id]
    assert escalation_alert(second, "sla_escalation").severity == kpi_pb2.SEVERITY_CRITICAL
    contract.validate(first)
    contract.validate(alert)


def test_first_response_time_and_sla_met_then_resolution_time() -> None:
    state = state_at_routing()
    first = record_reply(state, T0 + timedelta(minutes=30), has_text=True, status="pending")
    assert first.first_response
    assert first.first_response_seconds == 1800
    assert first.sla_status == reply_pb2.SLA_STATUS_MET
    assert first.resolution_seconds == 0
    assert first.state is not None
    assert first.state.status == "pending"
    later = record_reply(first.state, T0 + timedelta(hours=5), has_text=True, status="")
    assert not later.first_response
    assert later.first_response_seconds == 1800  # still the first response's
    assert later.sla_status == reply_pb2.SLA_STATUS_MET
    assert later.state is not None
    resolved = record_reply(later.state, T0 + timedelta(hours=6), has_text=False, status="resolved")
    assert resolved.resolution_seconds == 6 * 3600
    assert is_closed(resolved.state)


def test_a_late_first_response_breaches_the_sla_and_a_status_change_is_no_response() -> None:
    state = state_at_routing()
    status_only = record_reply(state, T0 + timedelta(hours=1), has_text=False, status="pending")
    assert not status_only.first_response
    assert status_only.sla_status == reply_pb2.SLA_STATUS_UNSPECIFIED
    assert status_only.state is not None
    late = record_reply(status_only.state, T0 + timedelta(hours=5), has_text=True, status="")
    assert late.first_response
    assert late.sla_status == reply_pb2.SLA_STATUS_BREACHED


def test_the_reply_message_points_at_the_interaction_on_its_network() -> None:
    state = state_at_routing()
    at = T0 + timedelta(minutes=10)
    outcome = record_reply(state, at, has_text=True, status="")
    reply = reply_message(
        state,
        outcome,
        reply_event_id="r-1",
        agent_id="agent-7",
        text="Bonjour",
        is_private=False,
        status="",
        at=at,
    )
    contract.validate(reply)
    assert reply.interaction_event_id == state.interaction_event_id
    assert reply.in_reply_to_external_id == "42"
    assert reply.sla_status == reply_pb2.SLA_STATUS_MET
    assert reply.first_response_seconds == 600
    assert reply.queue == "cs-fr"


def _reply(channel: int, *, private: bool, recipient: str = "") -> reply_pb2.Reply:
    return reply_pb2.Reply(
        header=common_pb2.EventHeader(channel=channel),  # type: ignore[arg-type]
        text="Bonjour, nous regardons",
        is_private=private,
        in_reply_to_external_id="1850",
        recipient_channel_user_id=recipient,
    )


def test_outbound_requests_follow_the_networks_reply_apis() -> None:
    x_public = outbound_request(_reply(common_pb2.CHANNEL_X, private=False))
    assert x_public is not None
    assert (x_public.network, x_public.path) == ("x", "/2/tweets")
    assert x_public.json == {
        "text": "Bonjour, nous regardons",
        "reply": {"in_reply_to_tweet_id": "1850"},
    }
    x_dm = outbound_request(_reply(common_pb2.CHANNEL_X, private=True, recipient="99"))
    assert x_dm is not None
    assert x_dm.path == "/2/dm_conversations/with/99/messages"
    facebook = outbound_request(_reply(common_pb2.CHANNEL_FACEBOOK, private=False))
    assert facebook is not None
    assert (facebook.network, facebook.path) == ("meta", "/1850/comments")
    assert facebook.json == {"message": "Bonjour, nous regardons"}
    instagram = outbound_request(_reply(common_pb2.CHANNEL_INSTAGRAM, private=False))
    assert instagram is not None
    assert (instagram.path, instagram.params) == (
        "/1850/replies",
        {"message": "Bonjour, nous regardons"},
    )
    private = outbound_request(_reply(common_pb2.CHANNEL_FACEBOOK, private=True))
    assert private is not None
    assert private.path == "/me/messages"
    assert private.json["recipient"] == {"comment_id": "1850"}
    assert private.json["messaging_type"] == "RESPONSE"
    status_only = _reply(common_pb2.CHANNEL_X, private=False)
    status_only.text = ""
    assert outbound_request(status_only) is None
    assert outbound_request(_reply(common_pb2.CHANNEL_EMAIL, private=False)) is None


def test_the_timers_hand_out_each_due_interaction_once_per_partition() -> None:
    timers = SlaTimers(horizons(marker_retention=3600))
    late, answered, later = (state_at_routing() for _ in range(3))
    late.interaction_event_id, answered.interaction_event_id = "late", "answered"
    later.interaction_event_id = "later"
    later.sla_deadline.CopyFrom(contract.timestamp(T0 + timedelta(hours=8)))
    timers.rebuild(0, [late, answered])
    timers.schedule(1, later)
    at = (T0 + timedelta(hours=5)).timestamp()
    assert sorted(timers.pop_due(0, at, limit=10)) == ["answered", "late"]
    assert timers.pop_due(0, at, limit=10) == []
    assert timers.pop_due(1, at, limit=10) == []
    # Escalating the first level schedules the second one.
    timers.schedule(0, escalated(late, 1))
    assert timers.pop_due(0, (T0 + timedelta(hours=6)).timestamp(), limit=10) == ["late"]
    timers.drop([1])
    assert timers.pop_due(1, (T0 + timedelta(days=9)).timestamp(), limit=10) == []


def test_a_scan_takes_at_most_its_limit_of_due_timers_and_leaves_the_rest_due() -> None:
    timers = SlaTimers(horizons(marker_retention=3600))
    for index in range(5):
        state = state_at_routing()
        state.interaction_event_id = f"due-{index}"
        state.sla_deadline.CopyFrom(contract.timestamp(T0 + timedelta(minutes=index)))
        timers.schedule(0, state)
    now = (T0 + timedelta(hours=5)).timestamp()
    assert timers.pop_due(0, now, limit=2) == ["due-0", "due-1"]
    assert timers.pop_due(0, now, limit=10) == ["due-2", "due-3", "due-4"]


def test_a_resolved_interaction_keeps_a_marker_that_no_older_record_replaces() -> None:
    state = state_at_routing()
    resolved = record_reply(state, T0 + timedelta(hours=1), has_text=True, status="resolved")
    assert is_closed(resolved.state)
    assert resolved.state.revision == state.revision + 1
    assert due_levels(resolved.state, T0 + timedelta(days=1)) == []
    assert not strictly_newer(resolved.state, state)
    assert not strictly_newer(resolved.state, resolved.state)
    assert strictly_newer(state, resolved.state)
    assert strictly_newer(None, state)
    timers = SlaTimers(horizons(marker_retention=3600))
    assert timers.when(resolved.state) == (T0 + timedelta(hours=2)).timestamp()


def test_an_erased_interaction_keeps_nothing_of_its_author() -> None:
    state = state_at_routing()
    marker = erased(state, T0 + timedelta(minutes=5))
    assert is_closed(marker)
    assert marker.revision == state.revision + 1
    assert not marker.author_handle
    assert not marker.author_channel_user_id
    assert not marker.external_id


def test_a_reply_read_before_its_interaction_is_kept_and_the_interaction_starts_from_it() -> None:
    state = state_at_routing()
    replied_at = T0 + timedelta(minutes=3)
    placeholder = awaiting_interaction(
        None,
        state.interaction_event_id,
        state.conversation_id,
        replied_at,
        has_text=True,
        status="",
    )
    assert is_placeholder(placeholder)
    assert not is_open(placeholder)
    assert next_due(placeholder) is None
    timers = SlaTimers(horizons(marker_retention=60))
    assert timers.when(placeholder) == (replied_at + timedelta(seconds=60)).timestamp()
    started = with_early_replies(state, placeholder)
    assert is_open(started)
    assert answered_at(started) == replied_at
    assert started.revision == placeholder.revision + 1
    assert due_levels(started, T0 + timedelta(days=1)) == []


def test_levels_due_before_a_late_answer_fire_before_it_with_their_usual_ids() -> None:
    state = state_at_routing()
    deadline = state.sla_deadline.ToDatetime(tzinfo=UTC)
    escalations, after = escalations_due_by(state, deadline - timedelta(seconds=1), T0)
    assert escalations == []
    assert after is state
    late = deadline + timedelta(seconds=1)
    escalations, after = escalations_due_by(state, late, late + timedelta(minutes=5))
    assert [e.level for e in escalations] == [1]
    assert escalations[0].header.event_id == escalation_event(state, 1, "", T0).header.event_id
    assert after.escalation_level == 1
    assert escalations_due_by(after, late, late)[0] == []
