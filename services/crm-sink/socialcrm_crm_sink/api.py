"""The CRM HTTP API: contacts, timeline, cases, identity links, merges and merge suggestions,
behind API keys."""

# No "from __future__ import annotations": FastAPI must see the local dependencies in signatures.

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from socialcrm.auth import AUTH_RESPONSES, ApiKeys, Principal
from socialcrm.errors import error_responses
from socialcrm.kafka import EventProducer
from socialcrm_crm_sink.erasure import ErasurePublisher
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
from socialcrm_crm_sink.records import case_changed_by_agent, manual_identity
from socialcrm_crm_sink.store import (
    BadTransition,
    CaseNotFound,
    ContactNotFound,
    CrmStore,
    IdentityTaken,
    TooManyIdentities,
)
from socialcrm_crm_sink.suggestions import STATUSES, SuggestionDecided, SuggestionNotFound

log = logging.getLogger(__name__)

IDENTITY_KINDS = ("x", "facebook", "instagram", "email", "phone", "customer_number")

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


def crm_router(
    store: CrmStore,
    erasure: ErasurePublisher,
    producer: EventProducer,
    keys: ApiKeys,
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["crm"], responses=AUTH_RESPONSES)
    read = Depends(keys.require("read"))
    agent = keys.require("agent")
    admin = keys.require("admin")

    @router.get("/contacts/{contact_id}", dependencies=[read])
    async def get_contact(
        contact_id: ContactId,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str, Query(pattern=r"^\d{0,9}$")] = "",
    ) -> dict[str, Any]:
        try:
            view = await store.contact_view(contact_id, limit=limit, cursor=int(cursor or 0))
        except ContactNotFound as error:
            raise HTTPException(404, str(error)) from error
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
        if not (handle or email or name):
            raise HTTPException(422, "give one of the query parameters handle, email or name")
        found = await store.search(handle=handle, email=email, name=name, limit=limit)
        return {"contacts": [jsonable(c) for c in found]}

    @router.get("/cases", dependencies=[read])
    async def list_cases(
        queue: Annotated[str | None, Query(max_length=MAX_QUEUE_LENGTH)] = None,
        status: Annotated[str | None, Query(max_length=MAX_STATUS_LENGTH)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        return {
            "cases": [
                jsonable(c) for c in await store.cases(queue=queue, status=status, limit=limit)
            ]
        }

    @router.patch("/cases/{case_id}")
    async def update_case(
        case_id: CaseId, update: CaseUpdate, principal: Annotated[Principal, Depends(agent)]
    ) -> dict[str, Any]:
        try:
            case = await store.update_case(
                case_id,
                status=update.status,
                assignee=update.assignee,
                note=update.note,
                actor=principal.agent_id,
            )
        except CaseNotFound as error:
            raise HTTPException(404, str(error)) from error
        except BadTransition as error:
            raise HTTPException(409, str(error)) from error
        await producer.publish_and_wait(case_changed_by_agent(case))
        return jsonable(case)

    @router.post("/contacts/{contact_id}/identities", dependencies=[Depends(admin)])
    async def link_identity(contact_id: ContactId, link: IdentityLink) -> dict[str, Any]:
        if link.kind not in IDENTITY_KINDS:
            raise HTTPException(422, f"kind must be one of {', '.join(IDENTITY_KINDS)}")
        identity = manual_identity(link.kind, link.value)
        if identity is None:
            raise HTTPException(
                422, "value is empty after normalisation (blanks and a leading @ removed)"
            )
        try:
            contact = await store.link(contact_id, identity)
        except ContactNotFound as error:
            raise HTTPException(404, str(error)) from error
        except IdentityTaken as error:
            raise HTTPException(409, f"{error}; merge the contacts instead") from error
        except TooManyIdentities as error:
            raise HTTPException(422, str(error)) from error
        return jsonable(contact)

    @router.post("/contacts/{contact_id}/merge", dependencies=[Depends(admin)])
    async def merge_contacts(contact_id: ContactId, merge: Merge) -> dict[str, Any]:
        try:
            contact = await store.merge(contact_id, merge.other_contact_id)
        except ContactNotFound as error:
            raise HTTPException(404, str(error)) from error
        except TooManyIdentities as error:
            raise HTTPException(422, str(error)) from error
        return jsonable(contact)

    @router.get("/merge-suggestions", dependencies=[read])
    async def list_merge_suggestions(
        status: Annotated[
            str | None, Query(max_length=MAX_STATUS_LENGTH, description="pending, accepted...")
        ] = "pending",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        if status and status not in STATUSES:
            raise HTTPException(422, f"status must be one of {', '.join(STATUSES)}")
        found = await store.suggestions.listed(status=status, limit=limit)
        return {"merge_suggestions": [jsonable(s) for s in found]}

    @router.post("/merge-suggestions/{suggestion_id}/accept", responses=DECIDED)
    async def accept_merge_suggestion(
        suggestion_id: SuggestionId, principal: Annotated[Principal, Depends(agent)]
    ) -> dict[str, Any]:
        try:
            contact = await store.accept_suggestion(suggestion_id, actor=principal.agent_id)
        except (SuggestionNotFound, ContactNotFound) as error:
            raise HTTPException(404, str(error)) from error
        except SuggestionDecided as error:
            raise HTTPException(409, str(error)) from error
        except TooManyIdentities as error:
            raise HTTPException(422, str(error)) from error
        return jsonable(contact)

    @router.post("/merge-suggestions/{suggestion_id}/reject", responses=DECIDED)
    async def reject_merge_suggestion(
        suggestion_id: SuggestionId, principal: Annotated[Principal, Depends(agent)]
    ) -> dict[str, Any]:
        try:
            suggestion = await store.suggestions.claim(
                suggestion_id, status="rejected", actor=principal.agent_id
            )
        except SuggestionNotFound as error:
            raise HTTPException(404, str(error)) from error
        except SuggestionDecided as error:
            raise HTTPException(409, str(error)) from error
        return jsonable(suggestion)

    @router.get("/contacts/{contact_id}/export", dependencies=[Depends(admin)])
    async def export_contact(contact_id: ContactId) -> dict[str, Any]:
        try:
            held = await store.export(contact_id)
        except ContactNotFound as error:
            raise HTTPException(404, str(error)) from error
        return {
            "contact": jsonable(held["contact"]),
            "merged_contacts": [jsonable(c) for c in held["merged_contacts"]],
            "timeline": [jsonable(e) for e in held["timeline"]],
            "cases": [jsonable(c) for c in held["cases"]],
        }

    @router.delete("/contacts/{contact_id}", dependencies=[Depends(admin)])
    async def erase_contact(contact_id: ContactId) -> dict[str, Any]:
        try:
            plan = await store.plan_erasure(contact_id)
        except ContactNotFound as error:
            raise HTTPException(404, str(error)) from error
        # Tombstones first: if the store then fails, a retry of the request finds the person
        # again and finishes; the other order could leave downstream copies nobody erases.
        tombstones = await erasure.forget(plan)
        await store.erase(plan)
        await erasure.announce(plan)
        return {"erased_contact_ids": plan.contact_ids, "tombstones": tombstones}

    return router
