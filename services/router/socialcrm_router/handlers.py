"""The router's handlers: routing of enriched interactions, replies (API and other tools)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

from aiokafka import ConsumerRecord
from google.protobuf.message import Message
from pydantic import BaseModel

from socialcrm.kafka import EventProducer
from socialcrm.v1 import enriched_pb2, reply_pb2
from socialcrm_router.decide import route
from socialcrm_router.rules_file import RulesSource
from socialcrm_router.sla import (
    IMMEDIATE_LEVEL,
    escalation_alert,
    escalation_event,
    record_reply,
    reply_message,
    sla_state_for,
)
from socialcrm_router.state import SlaStateStore

log = logging.getLogger(__name__)

SLA_STATUS_NAMES: dict[reply_pb2.SlaStatus.ValueType, Literal["met", "breached", "unknown"]] = {
    reply_pb2.SLA_STATUS_UNSPECIFIED: "unknown",
    reply_pb2.SLA_STATUS_MET: "met",
    reply_pb2.SLA_STATUS_BREACHED: "breached",
}


class NotTracked(LookupError):
    """The router holds no open interaction with this event id."""


class ReplyResult(BaseModel):
    reply_event_id: str
    interaction_event_id: str
    first_response: bool
    first_response_seconds: float
    sla_status: Literal["met", "breached", "unknown"]
    sla_deadline: datetime
    resolution_seconds: float | None
    status: str


class Router:
    """The router's handlers over its rules, durable SLA state and producer."""

    def __init__(
        self,
        rules: RulesSource,
        store: SlaStateStore,
        producer: EventProducer,
        clock: Callable[[], datetime],
    ) -> None:
        self.rules = rules
        self.store = store
        self.producer = producer
        self.clock = clock
        self._reply_lock = asyncio.Lock()

    async def handle(
        self, enriched: enriched_pb2.EnrichedInteraction, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        now, rules = self.clock(), self.rules.current
        routed = route(enriched, rules, now)
        outputs: list[Message] = [routed]
        state = sla_state_for(routed, rules)
        # A redelivered interaction keeps the timers (and replies) it already has.
        if routed.routing.needs_response and state.interaction_event_id not in self.store.states:
            self.store.remember(state)
            outputs.append(state)
        if routed.routing.escalated:
            escalation = escalation_event(
                state, IMMEDIATE_LEVEL, routed.routing.escalation_reason, now
            )
            outputs += [escalation, escalation_alert(escalation, "high_risk_escalation")]
        return outputs

    async def handle_reply(
        self, reply: reply_pb2.Reply, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        """Replies other tools publish stop the timers too (the API's are already counted)."""
        if reply.header.producer == "router":
            return []
        state = self.store.states.get(reply.interaction_event_id)
        if state is None:
            return []
        at = reply.header.occurred_at.ToDatetime(tzinfo=UTC)
        outcome = record_reply(state, at, has_text=bool(reply.text), status=reply.status)
        if outcome.state is None:
            await (await self.store.delete(reply.interaction_event_id))
            return []
        self.store.remember(outcome.state)
        return [outcome.state]

    async def reply(
        self, event_id: str, *, text: str, agent_id: str, is_private: bool, status: str
    ) -> ReplyResult:
        """An agent's reply or status change; ``agent_id`` is the authenticated agent."""
        async with self._reply_lock:
            state = self.store.states.get(event_id)
            if state is None:
                raise NotTracked(
                    f"no open interaction {event_id!r}: unknown, not needing a response,"
                    " or already resolved"
                )
            at = self.clock()
            outcome = record_reply(state, at, has_text=bool(text), status=status)
            reply_event_id = str(uuid.uuid4())
            message = reply_message(
                state,
                outcome,
                reply_event_id=reply_event_id,
                agent_id=agent_id,
                text=text,
                is_private=is_private,
                status=status,
                at=at,
            )
            await self.producer.publish_and_wait(message)
            if outcome.state is None:
                await (await self.store.delete(event_id))
            else:
                await (await self.store.put(outcome.state))
        log.info(
            "reply recorded",
            extra={"interaction_event_id": event_id, "first_response": outcome.first_response},
        )
        return ReplyResult(
            reply_event_id=reply_event_id,
            interaction_event_id=event_id,
            first_response=outcome.first_response,
            first_response_seconds=outcome.first_response_seconds,
            sla_status=SLA_STATUS_NAMES[outcome.sla_status],
            sla_deadline=state.sla_deadline.ToDatetime(tzinfo=UTC),
            resolution_seconds=outcome.resolution_seconds if status == "resolved" else None,
            status=status or state.status,
        )
