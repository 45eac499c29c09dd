"""Wiring of the router.

- social.enriched.v1 -> social.routed.v1 (+ immediate escalations, SLA timers);
- a periodic scan of the durable SLA timers -> social.escalations.v1 and alerts.v1;
- the reply API -> social.replies.v1;
- optionally the outbound sender: social.replies.v1 -> the networks' reply APIs.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

import httpx
from aiokafka import ConsumerRecord
from fastapi import APIRouter, FastAPI, HTTPException
from google.protobuf.message import Message
from pydantic import BaseModel, Field

from socialcrm import contract
from socialcrm.http import Component, TopicsReady, create_app
from socialcrm.kafka import EventProducer, StreamProcessor
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import enriched_pb2, kpi_pb2, reply_pb2, routed_pb2
from socialcrm_router.decide import route
from socialcrm_router.escalator import SlaEscalator
from socialcrm_router.outbound import OutboundSender, OutboundUnavailable
from socialcrm_router.rules_file import RulesSource
from socialcrm_router.sla import (
    IMMEDIATE_LEVEL,
    escalation_alert,
    escalation_event,
    record_reply,
    reply_message,
    sla_state_for,
)
from socialcrm_router.state import STATE_TOPIC, RouterProducer, SlaStateStore

log = logging.getLogger(__name__)

Status = Literal["open", "pending", "resolved"]
SLA_STATUS_NAMES: dict[reply_pb2.SlaStatus.ValueType, Literal["met", "breached", "unknown"]] = {
    reply_pb2.SLA_STATUS_UNSPECIFIED: "unknown",
    reply_pb2.SLA_STATUS_MET: "met",
    reply_pb2.SLA_STATUS_BREACHED: "breached",
}


class RouterSettings(ServiceSettings):
    service_name: str = "router"
    http_port: int = 8003
    router_rules_file: str = Field(
        "", description="YAML rule file; empty: the packaged rules/default.yaml."
    )
    router_rules_poll_seconds: float = Field(
        2.0, description="How often the rule file's modification time is checked."
    )
    router_sla_scan_seconds: float = Field(
        1.0, description="How often the SLA timers are scanned for escalations."
    )
    router_state_topic: str = Field(
        STATE_TOPIC, description="Compacted topic holding the durable SLA timers."
    )
    router_follow_replies: bool = Field(
        True,
        description="Also stop timers on replies other tools publish to social.replies.v1.",
    )
    router_outbound_enabled: bool = Field(
        False, description="Send social.replies.v1 to the networks' reply APIs."
    )
    router_x_api_base_url: str = Field("https://api.x.com", description="X API v2 base URL.")
    router_x_access_token: str = Field("", description="OAuth 2.0 user token for the X API.")
    router_graph_api_base_url: str = Field(
        "https://graph.facebook.com/v21.0", description="Meta Graph API base URL."
    )
    router_meta_access_token: str = Field("", description="Page access token for the Graph API.")


class ReplyRequest(BaseModel):
    text: str = Field(min_length=1, max_length=10_000, description="What the agent answers.")
    agent_id: str = Field(min_length=1)
    is_private: bool = Field(False, description="Answer by private message instead of in public.")
    status: Status | None = Field(None, description="New case status set with the reply.")


class StatusRequest(BaseModel):
    status: Status
    agent_id: str = Field(min_length=1)


class ReplyResult(BaseModel):
    reply_event_id: str
    interaction_event_id: str
    first_response: bool
    first_response_seconds: float
    sla_status: Literal["met", "breached", "unknown"]
    sla_deadline: datetime
    resolution_seconds: float | None
    status: str


class InteractionView(BaseModel):
    interaction_event_id: str
    queue: str
    team: str
    sla_deadline: datetime
    escalation_level: int
    first_response_at: datetime | None
    status: str
    rules_version: str


class RulesView(BaseModel):
    version: str
    source: str
    last_error: str


class HttpClient:
    """The outbound HTTP client as a component, so it closes with the app."""

    name = "outbound-http"

    def __init__(self) -> None:
        self.client = httpx.AsyncClient(timeout=10.0)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.client.aclose()

    async def check(self) -> None:
        return None


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
        async with self._reply_lock:
            state = self.store.states.get(event_id)
            if state is None:
                raise HTTPException(
                    404,
                    f"no open interaction {event_id!r}: unknown, not needing a response,"
                    " or already resolved",
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


def api(router: Router) -> APIRouter:
    routes = APIRouter(prefix="/v1", tags=["reply loop"])

    @routes.post(
        "/interactions/{event_id}/replies",
        status_code=201,
        summary="Post an agent's reply (and optionally a status) for an interaction",
        responses={404: {"description": "No open interaction with this event id"}},
    )
    async def post_reply(event_id: str, body: ReplyRequest) -> ReplyResult:
        return await router.reply(
            event_id,
            text=body.text,
            agent_id=body.agent_id,
            is_private=body.is_private,
            status=body.status or "",
        )

    @routes.post(
        "/interactions/{event_id}/status",
        summary="Change an interaction's case status (resolved stops its tracking)",
        responses={404: {"description": "No open interaction with this event id"}},
    )
    async def post_status(event_id: str, body: StatusRequest) -> ReplyResult:
        return await router.reply(
            event_id, text="", agent_id=body.agent_id, is_private=False, status=body.status
        )

    @routes.get(
        "/interactions/{event_id}",
        summary="SLA state of an open interaction",
        responses={404: {"description": "No open interaction with this event id"}},
    )
    async def get_interaction(event_id: str) -> InteractionView:
        state = router.store.states.get(event_id)
        if state is None:
            raise HTTPException(404, f"no open interaction {event_id!r}")
        return InteractionView(
            interaction_event_id=event_id,
            queue=state.queue,
            team=state.team,
            sla_deadline=state.sla_deadline.ToDatetime(tzinfo=UTC),
            escalation_level=state.escalation_level,
            first_response_at=state.first_response_at.ToDatetime(tzinfo=UTC)
            if state.HasField("first_response_at")
            else None,
            status=state.status,
            rules_version=state.rules_version,
        )

    @routes.get("/rules", tags=["rules"], summary="Rules in force and the last reload error")
    async def get_rules() -> RulesView:
        return RulesView(
            version=router.rules.current.version,
            source=router.rules.source,
            last_error=router.rules.last_error,
        )

    return routes


def build_app(
    settings: RouterSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> FastAPI:
    """``clock`` is the time source of routing, timers and replies (tests inject theirs)."""
    outputs = [routed_pb2.RoutedInteraction, routed_pb2.Escalation, kpi_pb2.Alert, reply_pb2.Reply]
    producer = RouterProducer(
        settings, settings.router_state_topic, [contract.topic_of(m) for m in outputs]
    )
    rules = RulesSource(settings.router_rules_file, settings.router_rules_poll_seconds)
    store = SlaStateStore(settings, producer)
    router = Router(rules, store, producer, clock)
    components: list[Component] = [
        producer,
        rules,
        store,
        StreamProcessor(
            settings=settings,
            group_id=settings.service_name,
            input_type=enriched_pb2.EnrichedInteraction,
            handler=router.handle,
            producer=producer,
        ),
        SlaEscalator(store, producer, clock, settings.router_sla_scan_seconds),
    ]
    if settings.router_follow_replies:
        components.append(
            StreamProcessor(
                settings=settings,
                group_id=f"{settings.service_name}-replies",
                input_type=reply_pb2.Reply,
                handler=router.handle_reply,
                producer=producer,
            )
        )
    if settings.router_outbound_enabled:
        http = HttpClient()
        sender = OutboundSender(
            http.client,
            base_urls={
                "x": settings.router_x_api_base_url,
                "meta": settings.router_graph_api_base_url,
            },
            tokens={"x": settings.router_x_access_token, "meta": settings.router_meta_access_token},
        )
        components += [
            http,
            StreamProcessor(
                settings=settings,
                group_id=f"{settings.service_name}-outbound",
                input_type=reply_pb2.Reply,
                handler=sender.handle,
                producer=producer,
                transient_errors=(OutboundUnavailable,),
            ),
        ]
    app = create_app(
        settings,
        components,
        before_start=[TopicsReady(settings, contract.all_topics())],
        title="Social CRM router",
        description=(
            "Routes `social.enriched.v1` into `social.routed.v1` with declarative rules, "
            "escalates on `social.escalations.v1` and `alerts.v1` when SLAs are missed, "
            f"keeps its SLA timers in the compacted `{settings.router_state_topic}`, "
            "and takes agents' replies into `social.replies.v1`."
        ),
    )
    app.include_router(api(router))
    return app
