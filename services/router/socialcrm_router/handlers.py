"""The router's handlers: routing of enriched interactions, and the owner's SLA commands
and replies (all on the stream processor's task, for the partitions this replica owns).

Commands and replies are checked before they change anything (plausibility.py), and an
interaction whose author was erased after it occurred is never held with its author's
coordinates (expiry.py, erasures.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.v1 import enriched_pb2, reply_pb2, routed_pb2
from socialcrm_router.decide import route
from socialcrm_router.expiry import named_author_keys
from socialcrm_router.metrics import SLA_COMMANDS
from socialcrm_router.ownership import SlaOwner
from socialcrm_router.plausibility import Plausibility
from socialcrm_router.rules_file import RulesSource
from socialcrm_router.sla import (
    IMMEDIATE_LEVEL,
    ReplyOutcome,
    answered_at,
    awaiting_interaction,
    erased,
    escalation_alert,
    escalation_event,
    is_closed,
    is_placeholder,
    noted_at,
    record_reply,
    reply_message,
    sla_state_for,
    was_applied,
    with_applied_command,
    with_early_replies,
)

log = logging.getLogger(__name__)


class Router:
    """The owner's handlers over the rules, the SLA state it owns and the clock."""

    def __init__(
        self,
        rules: RulesSource,
        owner: SlaOwner,
        clock: Callable[[], datetime],
        plausibility: Plausibility,
    ) -> None:
        self.rules = rules
        self.owner = owner
        self.clock = clock
        self.plausibility = plausibility

    async def handle(
        self, enriched: enriched_pb2.EnrichedInteraction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        now, rules = self.clock(), self.rules.current
        routed = route(enriched, rules, now)
        outputs: list[Message] = [routed]
        state = sla_state_for(routed, rules)
        held = self.owner.get(record.partition, state.interaction_event_id)
        if self.owner.erased_before(state):
            # Sent before its author's erasure, read after it: nothing of theirs is kept,
            # no timer, no escalation (their CRM data is erased by crm-sink the same way).
            if held is None or not is_closed(held):
                self.owner.put(record.partition, erased(held or state, now))
            return outputs
        # A redelivered interaction keeps the timers (and replies) it already has, and a
        # closed one stays closed; one whose replies were read first starts from them.
        if routed.routing.needs_response and (held is None or is_placeholder(held)):
            if held is not None:
                held = self._plausible_early_reply(state, held, now)
                # Levels due before the first reply (or the status change) fire first.
                escalations, state = self.owner.escalate(
                    record.partition, state, answered_at(held) or noted_at(held)
                )
                outputs += escalations
                state = with_early_replies(state, held)
            self.owner.put(record.partition, state)
        if routed.routing.escalated:
            escalation = escalation_event(
                state, IMMEDIATE_LEVEL, routed.routing.escalation_reason, now
            )
            outputs += [escalation, escalation_alert(escalation, "high_risk_escalation")]
        return outputs

    async def handle_command(
        self, command: routed_pb2.SlaCommand, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        """A reply or status change from the API (published as the Reply with the command's
        event id), or an erasure."""
        state = self.owner.get(record.partition, command.interaction_event_id)
        kind = command.WhichOneof("command") or "none"
        if kind == "erase":
            named = named_author_keys(command.erase)
            self.owner.erase(record.partition, state, named)
            applied = "applied" if state is not None else "authors" if named else "untracked"
            SLA_COMMANDS.labels(kind, applied).inc()
            return []
        if kind != "reply":
            SLA_COMMANDS.labels(kind, "unknown").inc()
            return []
        request, command_id = command.reply, command.header.event_id
        if was_applied(state, command_id):
            # The state was flushed after this command's Reply was acknowledged, and the
            # replica died before committing the offset: the Reply is out, the state already
            # shows it. Publishing it again would repeat its event id with other content.
            SLA_COMMANDS.labels(kind, "repeated").inc()
            log.info(
                "reply command already applied",
                extra={
                    "interaction_event_id": command.interaction_event_id,
                    "event_id": command_id,
                },
            )
            return []
        now = self.clock()
        try:
            self.plausibility.check_reply_command(command, state, now)
        except contract.ContractError:
            # Dead-lettered with the reason by the stream processor: a bad record.
            SLA_COMMANDS.labels(kind, "refused").inc()
            raise
        at = command.header.occurred_at.ToDatetime(tzinfo=UTC)
        if state is None or is_closed(state):
            # Closed meanwhile (or its marker expired): the agent's words still go out and
            # into the CRM, with no SLA outcome.
            SLA_COMMANDS.labels(kind, "closed").inc()
            answered = state or routed_pb2.InteractionSlaState(
                interaction_event_id=command.interaction_event_id,
                conversation_id=command.conversation_id,
            )
            outcome = ReplyOutcome(False, 0.0, reply_pb2.SLA_STATUS_UNSPECIFIED, 0.0, answered)
            escalations: list[Message] = []
            if state is not None:
                # Remembered so that, read again after the marker became another (erased),
                # it does not go out again with other content.
                self.owner.put(record.partition, with_applied_command(state, command_id))
        else:
            at = self._counted_at(kind, state, at, now)
            # Levels due before the reply and not fired (no owner meanwhile) fire first.
            escalations, answered = self.owner.escalate(record.partition, state, at)
            outcome = record_reply(
                answered,
                at,
                has_text=bool(request.text),
                status=request.status,
                command_event_id=command_id,
            )
            self.owner.put(record.partition, outcome.state)
        log.info(
            "reply recorded",
            extra={
                "interaction_event_id": command.interaction_event_id,
                "first_response": outcome.first_response,
            },
        )
        return [
            *escalations,
            reply_message(
                answered,
                outcome,
                reply_event_id=command_id,
                agent_id=request.agent_id,
                text=request.text,
                is_private=request.is_private,
                status=request.status,
                at=at,
            ),
        ]

    async def handle_reply(
        self, reply: reply_pb2.Reply, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        """Replies other tools publish stop the timers too (the router's own are applied)."""
        if reply.header.producer == "router":
            return []
        partition, event_id = record.partition, reply.interaction_event_id
        state = self.owner.get(partition, event_id)
        at = reply.header.occurred_at.ToDatetime(tzinfo=UTC)
        if state is None or is_placeholder(state):
            # Nothing to compare with but the clock: a reply cannot come from the future.
            at = self.plausibility.reply_time(
                state or routed_pb2.InteractionSlaState(), at, self.clock()
            )
            # Read before its interaction (the topics are read side by side): kept until
            # the interaction comes, which then starts from it.
            self.owner.put(
                partition,
                awaiting_interaction(
                    state,
                    event_id,
                    reply.conversation_id,
                    at,
                    has_text=bool(reply.text),
                    status=reply.status,
                ),
            )
            return []
        if is_closed(state):
            return []
        at = self._counted_at("tool_reply", state, at, self.clock())
        escalations, answered = self.owner.escalate(partition, state, at)
        outcome = record_reply(answered, at, has_text=bool(reply.text), status=reply.status)
        self.owner.put(partition, outcome.state)
        return escalations

    def _plausible_early_reply(
        self,
        state: routed_pb2.InteractionSlaState,
        held: routed_pb2.InteractionSlaState,
        now: datetime,
    ) -> routed_pb2.InteractionSlaState:
        """The replies read before ``state``'s interaction, their first response dated now
        when the time they stated is implausible for it (e.g. before it occurred)."""
        stated = answered_at(held)
        if stated is None or self.plausibility.reply_time(state, stated, now) == stated:
            return held
        corrected = routed_pb2.InteractionSlaState()
        corrected.CopyFrom(held)
        corrected.first_response_at.CopyFrom(contract.timestamp(now))
        return corrected

    def _counted_at(
        self, kind: str, state: routed_pb2.InteractionSlaState, stated: datetime, now: datetime
    ) -> datetime:
        """The time a reply's SLA outcome counts from (see plausibility.py)."""
        at = self.plausibility.reply_time(state, stated, now)
        SLA_COMMANDS.labels(kind, "applied" if at == stated else "applied_at_owner_time").inc()
        return at
