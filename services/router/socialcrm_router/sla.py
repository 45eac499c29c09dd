"""SLA timers, escalations and reply metrics (pure logic).

An interaction that needs a response gets an ``InteractionSlaState``: its deadline and
the two escalation levels. ``due_levels`` says which levels must fire at a given time;
``record_reply`` computes first response time, SLA met/breached and resolution time,
and the state after the reply. A resolved (or erased) interaction keeps a marker state,
so that an old record read back cannot bring it back; expiry.py says when each state may go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from socialcrm import contract
from socialcrm.v1 import common_pb2, kpi_pb2, reply_pb2, routed_pb2
from socialcrm_router.rules import RuleSet

RESOLVED = "resolved"
ERASED = "erased"
CLOSED_STATUSES = frozenset({RESOLVED, ERASED})
IMMEDIATE_LEVEL = 0
# Reply commands whose event ids a state remembers (applied_commands). A command comes back
# only when the state was flushed but the offset behind it not committed yet: the successor
# reads again at most the records of one uncommitted batch, and one interaction gets a
# handful of agent replies in that time. 16 covers that many times over while keeping a
# state record small (16 ids of 36 characters: under 1 KB).
APPLIED_COMMANDS_KEPT = 16
ESCALATION_SUMMARY = {
    1: "no first response by the SLA deadline",
    2: "still no first response after the second escalation delay",
}


def _at(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def sla_state_for(
    routed: routed_pb2.RoutedInteraction, rules: RuleSet
) -> routed_pb2.InteractionSlaState:
    """The timers of a routed interaction (kept only when it needs a response)."""
    routing, interaction = routed.routing, routed.enriched.interaction
    deadline = _at(routing.sla_deadline)
    queue = rules.queues.get(routing.queue)
    return routed_pb2.InteractionSlaState(
        interaction_event_id=routed.header.event_id,
        conversation_id=interaction.conversation_id,
        channel=routed.header.channel,
        external_id=routed.header.external_id,
        queue=routing.queue,
        team=routing.team,
        priority=routing.priority,
        customer_tier=routing.customer_tier,
        occurred_at=interaction.header.occurred_at,
        sla_deadline=routing.sla_deadline,
        first_level_queue=queue.first_level_queue if queue else f"{routing.team}-lead",
        second_level_at=contract.timestamp(deadline + rules.escalation.second_level_after),
        second_level_queue=rules.escalation.second_level_queue,
        status="open",
        rules_version=routing.rules_version,
        author_handle=interaction.author.handle,
        author_channel_user_id=interaction.author.channel_user_id,
        is_public=interaction.is_public,
        revision=1,
    )


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos * 1e-9


def is_closed(state: routed_pb2.InteractionSlaState) -> bool:
    """Resolved or erased: only a marker is left."""
    return state.status in CLOSED_STATUSES


def is_placeholder(state: routed_pb2.InteractionSlaState) -> bool:
    """A reply read before its interaction: no deadline yet (see ``awaiting_interaction``)."""
    return not state.HasField("sla_deadline")


def is_open(state: routed_pb2.InteractionSlaState) -> bool:
    """Tracked and not closed: what the reply API answers about."""
    return not is_closed(state) and not is_placeholder(state)


def strictly_newer(
    held: routed_pb2.InteractionSlaState | None, new: routed_pb2.InteractionSlaState
) -> bool:
    """Whether a changelog record read back replaces the state held."""
    return held is None or new.revision > held.revision


def next_due(state: routed_pb2.InteractionSlaState) -> float | None:
    """When (epoch seconds) the next level is due; None when nothing is left to fire."""
    if state.escalation_level >= 2 or state.HasField("first_response_at"):
        return None
    if is_closed(state) or is_placeholder(state):
        return None
    if state.escalation_level < 1:
        return _seconds(state.sla_deadline)
    return _seconds(state.second_level_at)


def due_levels(state: routed_pb2.InteractionSlaState, now: datetime) -> list[int]:
    """SLA levels not yet escalated whose time has come (none once answered)."""
    if next_due(state) is None:
        return []
    at = now.timestamp()
    levels = []
    if state.escalation_level < 1 and at >= _seconds(state.sla_deadline):
        levels.append(1)
    if at >= _seconds(state.second_level_at):
        levels.append(2)
    return levels


def escalations_due_by(
    state: routed_pb2.InteractionSlaState, by: datetime, now: datetime
) -> tuple[list[routed_pb2.Escalation], routed_pb2.InteractionSlaState]:
    """The escalations of the levels due by ``by`` and not fired yet, dated ``now``, and the
    state that records them. ``by`` is now for the timers, or the time of an answer read
    after its levels fell due (a failover left the partition without an owner meanwhile):
    a level missed stays missed, and fires late rather than never, with its usual id."""
    levels = due_levels(state, by)
    if not levels:
        return [], state
    escalations = [
        escalation_event(state, level, ESCALATION_SUMMARY[level], now) for level in levels
    ]
    return escalations, escalated(state, max(levels))


def escalated(state: routed_pb2.InteractionSlaState, level: int) -> routed_pb2.InteractionSlaState:
    after = routed_pb2.InteractionSlaState()
    after.CopyFrom(state)
    after.escalation_level = max(state.escalation_level, level)
    after.revision = state.revision + 1
    return after


def _header(
    state: routed_pb2.InteractionSlaState, purpose: str, now: datetime
) -> common_pb2.EventHeader:
    return common_pb2.EventHeader(
        event_id=contract.derived_event_id(state.interaction_event_id, purpose),
        channel=state.channel,
        external_id=state.external_id,
        occurred_at=contract.timestamp(now),
        ingested_at=contract.timestamp(now),
        schema_version=contract.SCHEMA_VERSION,
        producer="router",
    )


def escalation_event(
    state: routed_pb2.InteractionSlaState, level: int, reason: str, now: datetime
) -> routed_pb2.Escalation:
    """Level 0 (immediate) and 1 go to the team lead queue, level 2 further up."""
    return routed_pb2.Escalation(
        header=_header(state, f"escalation/{level}", now),
        interaction_event_id=state.interaction_event_id,
        conversation_id=state.conversation_id,
        level=level,
        reason=reason,
        from_queue=state.queue,
        to_queue=state.second_level_queue if level == 2 else state.first_level_queue,
        priority=state.priority,
        sla_deadline=state.sla_deadline,
        escalated_at=contract.timestamp(now),
        rules_version=state.rules_version,
    )


def escalation_alert(escalation: routed_pb2.Escalation, kind: str) -> kpi_pb2.Alert:
    header = common_pb2.EventHeader()
    header.CopyFrom(escalation.header)
    header.event_id = contract.derived_event_id(escalation.header.event_id, "alert")
    critical = escalation.level != 1
    return kpi_pb2.Alert(
        header=header,
        alert_key=f"{kind}:{escalation.interaction_event_id}",
        kind=kind,
        severity=kpi_pb2.SEVERITY_CRITICAL if critical else kpi_pb2.SEVERITY_WARNING,
        summary=f"{escalation.reason} (level {escalation.level}, {escalation.from_queue}"
        f" -> {escalation.to_queue})",
        detected_at=escalation.escalated_at,
        evidence={"level": float(escalation.level)},
        sample_event_ids=[escalation.interaction_event_id],
    )


@dataclass(frozen=True)
class ReplyOutcome:
    first_response: bool
    first_response_seconds: float
    sla_status: reply_pb2.SlaStatus.ValueType
    resolution_seconds: float
    # State to keep after the reply: a marker once the interaction is resolved.
    state: routed_pb2.InteractionSlaState


def was_applied(state: routed_pb2.InteractionSlaState | None, command_event_id: str) -> bool:
    """Whether the reply command ``command_event_id`` already changed ``state`` (and so its
    Reply was published: a state is flushed only once its outputs are acknowledged)."""
    return state is not None and command_event_id in state.applied_commands


def _note_command(after: routed_pb2.InteractionSlaState, command_event_id: str) -> None:
    if command_event_id:
        after.applied_commands.append(command_event_id)
        del after.applied_commands[:-APPLIED_COMMANDS_KEPT]


def with_applied_command(
    state: routed_pb2.InteractionSlaState, command_event_id: str
) -> routed_pb2.InteractionSlaState:
    """``state`` (a closed marker, left as it is otherwise) remembering the command."""
    after = routed_pb2.InteractionSlaState()
    after.CopyFrom(state)
    after.revision = state.revision + 1
    _note_command(after, command_event_id)
    return after


def record_reply(
    state: routed_pb2.InteractionSlaState,
    at: datetime,
    *,
    has_text: bool,
    status: str,
    command_event_id: str = "",
) -> ReplyOutcome:
    """Metrics of a reply (``has_text``) or status change made at ``at``; the state after it
    remembers ``command_event_id``, the reply command applied (none for a tool's reply)."""
    after = routed_pb2.InteractionSlaState()
    after.CopyFrom(state)
    after.revision = state.revision + 1
    _note_command(after, command_event_id)
    first = has_text and not state.HasField("first_response_at")
    if first:
        after.first_response_at.CopyFrom(contract.timestamp(at))
    if status:
        after.status = status
    occurred_at = _at(state.occurred_at)
    first_response_seconds = 0.0
    sla_status = reply_pb2.SLA_STATUS_UNSPECIFIED
    if after.HasField("first_response_at"):
        responded_at = _at(after.first_response_at)
        first_response_seconds = (responded_at - occurred_at).total_seconds()
        met = responded_at <= _at(state.sla_deadline)
        sla_status = reply_pb2.SLA_STATUS_MET if met else reply_pb2.SLA_STATUS_BREACHED
    resolved = after.status == RESOLVED
    if resolved:
        after.closed_at.CopyFrom(contract.timestamp(at))
    return ReplyOutcome(
        first_response=first,
        first_response_seconds=first_response_seconds,
        sla_status=sla_status,
        resolution_seconds=(at - occurred_at).total_seconds() if resolved else 0.0,
        state=after,
    )


def awaiting_interaction(
    held: routed_pb2.InteractionSlaState | None,
    interaction_event_id: str,
    conversation_id: str,
    at: datetime,
    *,
    has_text: bool,
    status: str,
) -> routed_pb2.InteractionSlaState:
    """What the owner keeps of a reply read before its interaction (``held``: the replies
    kept so far). The owner reads its input topics side by side, so after a failover it
    may read a reply before the interaction; the interaction's state then starts from it.
    ``closed_at`` dates it, so that it expires like a marker if the interaction never comes.
    """
    after = routed_pb2.InteractionSlaState()
    if held is not None:
        after.CopyFrom(held)
    after.interaction_event_id = interaction_event_id
    after.conversation_id = conversation_id
    after.revision = (held.revision if held is not None else 0) + 1
    if has_text and not after.HasField("first_response_at"):
        after.first_response_at.CopyFrom(contract.timestamp(at))
    if status:
        after.status = status
    after.closed_at.CopyFrom(contract.timestamp(at))
    return after


def with_early_replies(
    state: routed_pb2.InteractionSlaState, placeholder: routed_pb2.InteractionSlaState
) -> routed_pb2.InteractionSlaState:
    """The state of an interaction whose replies were read before it."""
    after = routed_pb2.InteractionSlaState()
    after.CopyFrom(state)
    after.revision = placeholder.revision + 1
    after.applied_commands.extend(placeholder.applied_commands)
    if placeholder.HasField("first_response_at"):
        after.first_response_at.CopyFrom(placeholder.first_response_at)
    if placeholder.status:
        after.status = placeholder.status
        if placeholder.status == RESOLVED:
            after.closed_at.CopyFrom(placeholder.closed_at)
    return after


def answered_at(state: routed_pb2.InteractionSlaState) -> datetime | None:
    """When the interaction got its first response (None: not yet)."""
    return _at(state.first_response_at) if state.HasField("first_response_at") else None


def noted_at(state: routed_pb2.InteractionSlaState) -> datetime:
    """When a closed interaction, or a placeholder, was last changed."""
    return _at(state.closed_at)


def erased(state: routed_pb2.InteractionSlaState, at: datetime) -> routed_pb2.InteractionSlaState:
    """The marker of an interaction whose author was erased: nothing personal kept (the
    ids of the commands applied are random ids, kept so that none is applied again)."""
    return routed_pb2.InteractionSlaState(
        interaction_event_id=state.interaction_event_id,
        conversation_id=state.conversation_id,
        status=ERASED,
        closed_at=contract.timestamp(at),
        revision=state.revision + 1,
        applied_commands=state.applied_commands,
    )


def reply_message(
    state: routed_pb2.InteractionSlaState,
    outcome: ReplyOutcome,
    *,
    reply_event_id: str,
    agent_id: str,
    text: str,
    is_private: bool,
    status: str,
    at: datetime,
) -> reply_pb2.Reply:
    return reply_pb2.Reply(
        header=common_pb2.EventHeader(
            event_id=reply_event_id,
            channel=state.channel,
            # The network gives the reply its own id only once sent: until then it is ours.
            external_id=f"reply:{reply_event_id}",
            occurred_at=contract.timestamp(at),
            ingested_at=contract.timestamp(at),
            schema_version=contract.SCHEMA_VERSION,
            producer="router",
        ),
        interaction_event_id=state.interaction_event_id,
        conversation_id=state.conversation_id,
        agent_id=agent_id,
        text=text,
        is_private=is_private,
        status=status,
        first_response=outcome.first_response,
        first_response_seconds=outcome.first_response_seconds,
        sla_status=outcome.sla_status,
        sla_deadline=state.sla_deadline,
        resolution_seconds=outcome.resolution_seconds,
        queue=state.queue,
        in_reply_to_external_id=state.external_id,
        recipient_channel_user_id=state.author_channel_user_id,
    )
