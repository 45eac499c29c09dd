"""The router's HTTP API: agents' replies and status changes, SLA state, rules in force.

Every route needs an API key (``socialcrm.auth``): writes the ``agent`` scope, reads the
``read`` scope; ``/v1/agents/me`` tells a key's agent the queues it may work. The agent of
a reply is the one bound to the key, never taken from the body. Replies and status changes
are handed to the owner of the interaction's state and answered 202, once the agent's queue
permissions and rate limits allow them (see reply_desk.py); errors are the domain's
(socialcrm.errors.DomainError).
"""

# No "from __future__ import annotations": FastAPI must see the local dependencies in signatures.

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from socialcrm.auth import AUTH_RESPONSES, ApiKeys, Principal
from socialcrm.strict_json import StrictJsonRoute
from socialcrm_router.reply_desk import Accepted, ReplyDesk
from socialcrm_router.rules_file import RulesSource

Status = Literal["open", "pending", "resolved"]
# Event ids are UUIDs (36 characters); the bound keeps room for other id schemes.
EVENT_ID_MAX_LENGTH = 128
REPLY_TEXT_MAX_LENGTH = 10_000

EventId = Annotated[str, Path(min_length=1, max_length=EVENT_ID_MAX_LENGTH)]
NOT_TRACKED: dict[int | str, dict[str, Any]] = {
    404: {"description": "No open interaction with this event id"}
}
REPLY_REFUSALS: dict[int | str, dict[str, Any]] = {
    **NOT_TRACKED,
    403: {"description": "The key lacks the scope, or its agent may not work this queue"},
    429: {"description": "Too many replies of this agent or to this interaction (Retry-After)"},
}


class ReplyRequest(BaseModel):
    # A field the API does not know (e.g. the former ``agent_id``) is refused, not ignored:
    # the agent comes from the API key.
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1, max_length=REPLY_TEXT_MAX_LENGTH, description="What the agent answers."
    )
    is_private: bool = Field(False, description="Answer by private message instead of in public.")
    status: Status | None = Field(None, description="New case status set with the reply.")


class StatusRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status


class InteractionView(BaseModel):
    interaction_event_id: str
    queue: str
    team: str
    sla_deadline: datetime
    escalation_level: int
    first_response_at: datetime | None
    status: str
    rules_version: str


class AgentView(BaseModel):
    agent_id: str = Field(description="The agent bound to the key.")
    queues: list[str] = Field(
        description="Queue or team names the agent may work (ROUTER_AGENT_QUEUES): "
        '`["*"]` all of them, `[]` none.'
    )


class RulesView(BaseModel):
    version: str
    source: str
    last_error: str


def api(desk: ReplyDesk, rules: RulesSource, keys: ApiKeys) -> APIRouter:
    routes = APIRouter(
        prefix="/v1",
        tags=["reply loop"],
        responses=AUTH_RESPONSES,
        route_class=StrictJsonRoute,
    )
    agent = keys.require("agent")
    read = Depends(keys.require("read"))

    @routes.post(
        "/interactions/{event_id}/replies",
        status_code=202,
        summary="Post an agent's reply (and optionally a status) for an interaction (agent)",
        description="Handed to the owner of the interaction's SLA state, which publishes the "
        "Reply on social.replies.v1 with `reply_event_id` as its event id, first response "
        "and SLA outcome included.",
        responses=REPLY_REFUSALS,
    )
    async def post_reply(
        event_id: EventId, body: ReplyRequest, principal: Annotated[Principal, Depends(agent)]
    ) -> Accepted:
        return await desk.request(
            event_id,
            text=body.text,
            agent_id=principal.agent_id,
            is_private=body.is_private,
            status=body.status or "",
        )

    @routes.post(
        "/interactions/{event_id}/status",
        status_code=202,
        summary="Change an interaction's case status; resolved stops its tracking (agent)",
        responses=REPLY_REFUSALS,
    )
    async def post_status(
        event_id: EventId, body: StatusRequest, principal: Annotated[Principal, Depends(agent)]
    ) -> Accepted:
        return await desk.request(
            event_id, text="", agent_id=principal.agent_id, is_private=False, status=body.status
        )

    @routes.get(
        "/interactions/{event_id}",
        summary="SLA state of an open interaction, as its owner last published it (read)",
        responses=NOT_TRACKED,
        dependencies=[read],
    )
    async def get_interaction(event_id: EventId) -> InteractionView:
        state = desk.open_interaction(event_id)
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

    @routes.get(
        "/agents/me",
        tags=["agents"],
        summary="The caller's agent and the queues it may work (read)",
        description="What the agents' workspace lists for the agent signed in with this key; "
        "the reply API refuses the other queues (403).",
    )
    async def get_agent(principal: Annotated[Principal, read]) -> AgentView:
        return AgentView(
            agent_id=principal.agent_id, queues=desk.queues.queues_of(principal.agent_id)
        )

    @routes.get(
        "/rules",
        tags=["rules"],
        summary="Rules in force and the last reload error (read)",
        dependencies=[read],
    )
    async def get_rules() -> RulesView:
        return RulesView(
            version=rules.current.version, source=rules.source, last_error=rules.last_error
        )

    return routes
