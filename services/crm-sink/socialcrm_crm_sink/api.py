"""The CRM HTTP API: contacts, timeline, cases, identity links, merges and merge suggestions,
behind API keys. HTTP only: ``CrmHandlers`` decides, one exception handler maps its errors."""

# No "from __future__ import annotations": FastAPI must see the local dependencies in signatures.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from socialcrm.auth import AUTH_RESPONSES, ApiKeys, Principal
from socialcrm.errors import ErrorResponse, error_responses
from socialcrm.strict_json import StrictJsonRoute
from socialcrm_crm_sink.errors import CrmError
from socialcrm_crm_sink.handlers import CrmHandlers
from socialcrm_crm_sink.limits import (
    MAX_ASSIGNEE_LENGTH,
    MAX_ID_LENGTH,
    MAX_IDENTITY_KIND_LENGTH,
    MAX_IDENTITY_VALUE_LENGTH,
    MAX_NAME_QUERY_LENGTH,
    MAX_NOTE_LENGTH,
    MAX_QUEUE_LENGTH,
    MAX_STATUS_LENGTH,
)

# A suggestion an agent already accepted or rejected.
DECIDED = error_responses(409)

# Every string a caller sends is bounded (422 naming the field and the limit beyond).
ContactId = Annotated[str, Path(max_length=MAX_ID_LENGTH)]
CaseId = Annotated[str, Path(max_length=MAX_ID_LENGTH)]
SuggestionId = Annotated[str, Path(max_length=MAX_ID_LENGTH)]
IdentityQuery = Annotated[str | None, Query(max_length=MAX_IDENTITY_VALUE_LENGTH)]


class CaseUpdate(BaseModel):
    status: str | None = Field(None, max_length=MAX_STATUS_LENGTH)
    assignee: str | None = Field(None, max_length=MAX_ASSIGNEE_LENGTH)
    note: str | None = Field(None, max_length=MAX_NOTE_LENGTH)


class IdentityLink(BaseModel):
    kind: str = Field(max_length=MAX_IDENTITY_KIND_LENGTH)
    value: str = Field(min_length=1, max_length=MAX_IDENTITY_VALUE_LENGTH)


class Merge(BaseModel):
    other_contact_id: str = Field(
        max_length=MAX_ID_LENGTH,
        description="Contact folded into this one (kept as a redirect).",
    )


def jsonable(document: dict[str, Any]) -> dict[str, Any]:
    """Mongo documents as JSON: ``_id`` becomes ``id``."""
    out = {k: v for k, v in document.items() if k != "_id"}
    return {"id": document["_id"], **out} if "_id" in document else out


async def crm_error(_: Request, exc: Exception) -> JSONResponse:
    """Every domain error as the shared error shape, with the status its class carries."""
    assert isinstance(exc, CrmError)
    return JSONResponse(ErrorResponse(detail=str(exc)).model_dump(), status_code=exc.status)


def install_crm_api(app: FastAPI, handlers: CrmHandlers, keys: ApiKeys) -> None:
    app.include_router(crm_router(handlers, keys))
    app.add_exception_handler(CrmError, crm_error)


def crm_router(handlers: CrmHandlers, keys: ApiKeys) -> APIRouter:
    router = APIRouter(
        prefix="/v1", tags=["crm"], responses=AUTH_RESPONSES, route_class=StrictJsonRoute
    )
    read = Depends(keys.require("read"))
    agent = keys.require("agent")
    admin = keys.require("admin")

    @router.get("/contacts/{contact_id}", dependencies=[read])
    async def get_contact(
        contact_id: ContactId,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str, Query(pattern=r"^\d{0,9}$")] = "",
    ) -> dict[str, Any]:
        view = await handlers.contact(contact_id, limit=limit, cursor=int(cursor or 0))
        return {
            **jsonable(view["contact"]),
            "timeline": [jsonable(e) for e in view["timeline"]],
            "next_cursor": view["next_cursor"],
            "open_cases": [jsonable(c) for c in view["open_cases"]],
            "sentiment_trend": view["sentiment_trend"],
        }

    @router.get("/contacts", dependencies=[read])
    async def search_contacts(
        handle: IdentityQuery = None,
        email: IdentityQuery = None,
        name: Annotated[str | None, Query(max_length=MAX_NAME_QUERY_LENGTH)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict[str, Any]:
        found = await handlers.search(handle=handle, email=email, name=name, limit=limit)
        return {"contacts": [jsonable(c) for c in found]}

    @router.get("/cases", dependencies=[read])
    async def list_cases(
        queue: Annotated[str | None, Query(max_length=MAX_QUEUE_LENGTH)] = None,
        status: Annotated[str | None, Query(max_length=MAX_STATUS_LENGTH)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        found = await handlers.cases(queue=queue, status=status, limit=limit)
        return {"cases": [jsonable(c) for c in found]}

    @router.patch("/cases/{case_id}")
    async def update_case(
        case_id: CaseId, update: CaseUpdate, principal: Annotated[Principal, Depends(agent)]
    ) -> dict[str, Any]:
        case = await handlers.update_case(
            case_id,
            status=update.status,
            assignee=update.assignee,
            note=update.note,
            actor=principal.agent_id,
        )
        return jsonable(case)

    @router.post("/contacts/{contact_id}/identities", dependencies=[Depends(admin)])
    async def link_identity(contact_id: ContactId, link: IdentityLink) -> dict[str, Any]:
        return jsonable(await handlers.link_identity(contact_id, link.kind, link.value))

    @router.post("/contacts/{contact_id}/merge", dependencies=[Depends(admin)])
    async def merge_contacts(contact_id: ContactId, merge: Merge) -> dict[str, Any]:
        return jsonable(await handlers.merge(contact_id, merge.other_contact_id))

    @router.get("/merge-suggestions", dependencies=[read])
    async def list_merge_suggestions(
        status: Annotated[
            str | None, Query(max_length=MAX_STATUS_LENGTH, description="pending, accepted...")
        ] = "pending",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        found = await handlers.merge_suggestions(status=status, limit=limit)
        return {"merge_suggestions": [jsonable(s) for s in found]}

    @router.post("/merge-suggestions/{suggestion_id}/accept", responses=DECIDED)
    async def accept_merge_suggestion(
        suggestion_id: SuggestionId, principal: Annotated[Principal, Depends(agent)]
    ) -> dict[str, Any]:
        contact = await handlers.accept_suggestion(suggestion_id, actor=principal.agent_id)
        return jsonable(contact)

    @router.post("/merge-suggestions/{suggestion_id}/reject", responses=DECIDED)
    async def reject_merge_suggestion(
        suggestion_id: SuggestionId, principal: Annotated[Principal, Depends(agent)]
    ) -> dict[str, Any]:
        suggestion = await handlers.reject_suggestion(suggestion_id, actor=principal.agent_id)
        return jsonable(suggestion)

    @router.get("/contacts/{contact_id}/export", dependencies=[Depends(admin)])
    async def export_contact(contact_id: ContactId) -> dict[str, Any]:
        held = await handlers.export(contact_id)
        return {
            "contact": jsonable(held["contact"]),
            "merged_contacts": [jsonable(c) for c in held["merged_contacts"]],
            "timeline": [jsonable(e) for e in held["timeline"]],
            "cases": [jsonable(c) for c in held["cases"]],
        }

    @router.delete("/contacts/{contact_id}", dependencies=[Depends(admin)])
    async def erase_contact(contact_id: ContactId) -> dict[str, Any]:
        return await handlers.erase(contact_id)

    return router
