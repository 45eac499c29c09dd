"""The CRM HTTP API: contacts, timeline, cases, identity links and merges, behind API keys."""

# No "from __future__ import annotations": FastAPI must see the local dependencies in signatures.

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from pydantic import BaseModel, Field

from socialcrm.kafka import EventProducer
from socialcrm_crm_sink.erasure import ErasurePublisher
from socialcrm_crm_sink.policy import presented_key
from socialcrm_crm_sink.records import case_changed_by_agent
from socialcrm_crm_sink.store import (
    BadTransition,
    CaseNotFound,
    ContactNotFound,
    CrmStore,
    IdentityTaken,
)

log = logging.getLogger(__name__)

IDENTITY_KINDS = ("x", "facebook", "instagram", "email", "phone", "customer_number")


class CaseUpdate(BaseModel):
    status: str | None = None
    assignee: str | None = None
    note: str | None = Field(None, max_length=4000)


class IdentityLink(BaseModel):
    kind: str
    value: str = Field(min_length=1, max_length=320)


class Merge(BaseModel):
    other_contact_id: str = Field(description="Contact folded into this one (kept as a redirect).")


def jsonable(document: dict[str, Any]) -> dict[str, Any]:
    """Mongo documents as JSON: ``_id`` becomes ``id``."""
    out = {k: v for k, v in document.items() if k != "_id"}
    return {"id": document["_id"], **out} if "_id" in document else out


def require(keys: dict[str, frozenset[str]], scope: str) -> Callable[..., Awaitable[str]]:
    async def check(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> str:
        key = presented_key(authorization, x_api_key)
        if key is None or key not in keys:
            raise HTTPException(
                401, "missing or unknown API key", headers={"WWW-Authenticate": "Bearer"}
            )
        if scope not in keys[key]:
            raise HTTPException(403, f"this API key lacks the {scope!r} scope")
        return key[:4] + "…"

    return check


def crm_router(
    store: CrmStore,
    erasure: ErasurePublisher,
    producer: EventProducer,
    keys: dict[str, frozenset[str]],
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["crm"])
    read = Depends(require(keys, "read"))
    agent = require(keys, "agent")
    admin = require(keys, "admin")

    @router.get("/contacts/{contact_id}", dependencies=[read])
    async def get_contact(
        contact_id: str,
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
        handle: str | None = None,
        email: str | None = None,
        name: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict[str, Any]:
        if not (handle or email or name):
            raise HTTPException(400, "give one of handle, email or name")
        found = await store.search(handle=handle, email=email, name=name, limit=limit)
        return {"contacts": [jsonable(c) for c in found]}

    @router.get("/cases", dependencies=[read])
    async def list_cases(
        queue: str | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        return {
            "cases": [
                jsonable(c) for c in await store.cases(queue=queue, status=status, limit=limit)
            ]
        }

    @router.patch("/cases/{case_id}")
    async def update_case(
        case_id: str, update: CaseUpdate, actor: Annotated[str, Depends(agent)]
    ) -> dict[str, Any]:
        try:
            case = await store.update_case(
                case_id,
                status=update.status,
                assignee=update.assignee,
                note=update.note,
                actor=actor,
            )
        except CaseNotFound as error:
            raise HTTPException(404, str(error)) from error
        except BadTransition as error:
            raise HTTPException(409, str(error)) from error
        await producer.publish_and_wait(case_changed_by_agent(case))
        return jsonable(case)

    @router.post("/contacts/{contact_id}/identities", dependencies=[Depends(admin)])
    async def link_identity(contact_id: str, link: IdentityLink) -> dict[str, Any]:
        if link.kind not in IDENTITY_KINDS:
            raise HTTPException(422, f"kind must be one of {', '.join(IDENTITY_KINDS)}")
        value = link.value.strip().lstrip("@").lower()
        identity = {"key": f"{link.kind}:{value}", "channel": link.kind, "handle": value}
        try:
            contact = await store.link(contact_id, identity)
        except ContactNotFound as error:
            raise HTTPException(404, str(error)) from error
        except IdentityTaken as error:
            raise HTTPException(409, f"{error}; merge the contacts instead") from error
        return jsonable(contact)

    @router.post("/contacts/{contact_id}/merge", dependencies=[Depends(admin)])
    async def merge_contacts(contact_id: str, merge: Merge) -> dict[str, Any]:
        try:
            contact = await store.merge(contact_id, merge.other_contact_id)
        except ContactNotFound as error:
            raise HTTPException(404, str(error)) from error
        return jsonable(contact)

    @router.get("/contacts/{contact_id}/export", dependencies=[Depends(admin)])
    async def export_contact(contact_id: str) -> dict[str, Any]:
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
    async def erase_contact(contact_id: str) -> dict[str, Any]:
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
