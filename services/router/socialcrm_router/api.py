"""The router's HTTP API: agents' replies and status changes, SLA state, rules in force.

Every route needs an API key (``socialcrm.auth``): writes the ``agent`` scope, reads the
``read`` scope. The agent of a reply is the one bound to the key, never taken from the body.
"""

# No "from __future__ import annotations": FastAPI must see the local dependencies in signatures.

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from socialcrm.auth import AUTH_RESPONSES, ApiKeys, Principal
from socialcrm_router.handlers import NotTracked, ReplyResult, Router

Status = Literal["open", "pending", "resolved"]
# Event ids are UUIDs (36 characters); the bound keeps room for other id schemes.
EVENT_ID_MAX_LENGTH = 128
REPLY_TEXT_MAX_LENGTH = 10_000

EventId = Annotated[str, Path(min_length=1, max_length=EVENT_ID_MAX_LENGTH)]
NOT_TRACKED: dict[int | str, dict[str, Any]] = {
    404: {"description": "No open interaction with this event id"}
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


class RulesView(BaseModel):
    version: str
    source: str
    last_error: str


def api(router: Router, keys: ApiKeys) -> APIRouter:
    routes = APIRouter(prefix="/v1", tags=["reply loop"], responses=AUTH_RESPONSES)
    agent = keys.require("agent")
    read = Depends(keys.require("read"))

    async def answer(
        event_id: str, principal: Principal, *, text: str, is_private: bool, status: str
    ) -> ReplyResult:
        try:
            return await router.reply(
                event_id,
                text=text,
                agent_id=principal.agent_id,
                is_private=is_private,
                status=status,
            )
        except NotTracked as error:
            raise HTTPException(404, str(error)) from error

    @routes.post(
        "/interactions/{event_id}/replies",
        status_code=201,
        summary="Post an agent's reply (and optionally a status) for an interaction (agent)",
        responses=NOT_TRACKED,
    )
    async def post_reply(
        event_id: EventId, body: ReplyRequest, principal: Annotated[Principal, Depends(agent)]
    ) -> ReplyResult:
        return await answer(
            event_id,
            principal,
            text=body.text,
            is_private=body.is_private,
            status=body.status or "",
        )

    @routes.post(
        "/interactions/{event_id}/status",
        summary="Change an interaction's case status; resolved stops its tracking (agent)",
        responses=NOT_TRACKED,
    )
    async def post_status(
        event_id: EventId, body: StatusRequest, principal: Annotated[Principal, Depends(agent)]
    ) -> ReplyResult:
        return await answer(event_id, principal, text="", is_private=False, status=body.status)

    @routes.get(
        "/interactions/{event_id}",
        summary="SLA state of an open interaction (read)",
        responses=NOT_TRACKED,
        dependencies=[read],
    )
    async def get_interaction(event_id: EventId) -> InteractionView:
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

    @routes.get(
        "/rules",
        tags=["rules"],
        summary="Rules in force and the last reload error (read)",
        dependencies=[read],
    )
    async def get_rules() -> RulesView:
        return RulesView(
            version=router.rules.current.version,
            source=router.rules.source,
            last_error=router.rules.last_error,
        )

    return routes
