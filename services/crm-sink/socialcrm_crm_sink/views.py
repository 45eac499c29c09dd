"""What the CRM API reads (MongoDB adapter): contact 360, search, cases."""

from __future__ import annotations

import re
from typing import Any

from pymongo import DESCENDING

from socialcrm_crm_sink.errors import ContactNotFound
from socialcrm_crm_sink.identities import IdentityKind
from socialcrm_crm_sink.mongo_writes import Collection
from socialcrm_crm_sink.trend import TREND_ENTRIES, sentiment_trend

# Merges chain (a merged contact may absorb others): more hops than this is a loop.
MAX_REDIRECTS = 16


class ContactViews:
    """The reads; the other parts of ``CrmStore`` find a contact with ``live``."""

    def __init__(self, *, contacts: Collection, timeline: Collection, cases: Collection) -> None:
        self.contacts = contacts
        self.timeline = timeline
        self.cases = cases

    async def live(self, contact_id: str) -> dict[str, Any]:
        """The contact, following merge redirects."""
        for _ in range(MAX_REDIRECTS):
            contact = await self.contacts.find_one({"_id": contact_id})
            if contact is None:
                raise ContactNotFound(contact_id)
            if not contact.get("merged_into"):
                return contact
            contact_id = contact["merged_into"]
        raise RuntimeError(f"merge redirects of {contact_id} loop")

    async def contact_view(self, contact_id: str, *, limit: int, cursor: int) -> dict[str, Any]:
        """Profile, identities, a page of timeline (newest first), open cases, sentiment trend."""
        contact = await self.live(contact_id)
        timeline = (
            await self.timeline.find({"contact_id": contact["_id"]})
            .sort([("occurred_at", DESCENDING), ("_id", DESCENDING)])
            .skip(cursor)
            .limit(limit + 1)
            .to_list()
        )
        recent = (
            await self.timeline.find(
                {"contact_id": contact["_id"]}, {"occurred_at": 1, "sentiment_score": 1}
            )
            .sort([("occurred_at", DESCENDING)])
            .limit(TREND_ENTRIES)
            .to_list()
        )
        cases = await self.cases.find({"contact_id": contact["_id"]}).to_list()
        return {
            "contact": contact,
            "timeline": timeline[:limit],
            "next_cursor": str(cursor + limit) if len(timeline) > limit else None,
            "open_cases": [c for c in cases if c["status"] != "closed"],
            "sentiment_trend": sentiment_trend(recent),
        }

    async def search(
        self, *, handle: str | None, email: str | None, name: str | None, limit: int
    ) -> list[dict[str, Any]]:
        if email:
            # Whoever proved the address, and whoever merely sent from it (told apart by kind).
            address = email.strip().lower()
            kinds = (IdentityKind.EMAIL, IdentityKind.UNVERIFIED_EMAIL)
            query: dict[str, Any] = {"identities.key": {"$in": [f"{k}:{address}" for k in kinds]}}
        elif handle:
            given = handle.strip().lstrip("@")
            # Handles are case-insensitive; stable ids (a YouTube channel's) are kept as given.
            values = {given.lower(), given}
            keys = [f"{kind}:{v}" for kind in IdentityKind if kind.handle for v in values]
            query = {"identities.key": {"$in": keys}}
        elif name:
            # No text index on the local server: a case-insensitive substring match instead.
            query = {"display_name": {"$regex": re.escape(name.strip()), "$options": "i"}}
        else:
            return []
        found = await self.contacts.find(query).limit(limit).to_list()
        return [c for c in found if not c.get("merged_into")]

    async def list_cases(
        self, *, queue: str | None, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        query = {k: v for k, v in (("queue", queue), ("status", status)) if v}
        return await self.cases.find(query).sort([("opened_at", DESCENDING)]).limit(limit).to_list()
