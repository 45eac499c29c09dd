"""Reads of the CRM (MongoDB adapter): contact 360, search, cases, GDPR export."""

from __future__ import annotations

import re
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

TREND_ENTRIES = 200
HANDLE_KINDS = ("x", "facebook", "instagram", "youtube", "forum", "community", "chat")


class CrmReads:
    """What the API reads; ``CrmStore`` adds the writes."""

    db: AsyncDatabase[dict[str, Any]]

    async def _live(self, contact_id: str) -> dict[str, Any]:
        """The contact, following merge redirects."""
        for _ in range(16):
            contact = await self.db.contacts.find_one({"_id": contact_id})
            if contact is None:
                raise ContactNotFound(contact_id)
            if not contact.get("merged_into"):
                return contact
            contact_id = contact["merged_into"]
        raise RuntimeError(f"merge redirects of {contact_id} loop")

    async def contact_view(self, contact_id: str, *, limit: int, cursor: int) -> dict[str, Any]:
        """Profile, identities, a page of timeline (newest first), open cases, sentiment trend."""
        contact = await self._live(contact_id)
        timeline = (
            await self.db.timeline.find({"contact_id": contact["_id"]})
            .sort([("occurred_at", DESCENDING), ("_id", DESCENDING)])
            .skip(cursor)
            .limit(limit + 1)
            .to_list()
        )
        recent = (
            await self.db.timeline.find(
                {"contact_id": contact["_id"]}, {"occurred_at": 1, "sentiment_score": 1}
            )
            .sort([("occurred_at", DESCENDING)])
            .limit(TREND_ENTRIES)
            .to_list()
        )
        cases = await self.db.cases.find({"contact_id": contact["_id"]}).to_list()
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
            query: dict[str, Any] = {"identities.key": f"email:{email.strip().lower()}"}
        elif handle:
            value = handle.strip().lstrip("@").lower()
            query = {"identities.key": {"$in": [f"{kind}:{value}" for kind in HANDLE_KINDS]}}
        elif name:
            # No text index on the local server: a case-insensitive substring match instead.
            query = {"display_name": {"$regex": re.escape(name.strip()), "$options": "i"}}
        else:
            return []
        found = await self.db.contacts.find(query).limit(limit).to_list()
        return [c for c in found if not c.get("merged_into")]

    async def cases(self, *, queue: str | None, status: str | None, limit: int) -> list[Any]:
        query = {k: v for k, v in (("queue", queue), ("status", status)) if v}
        return (
            await self.db.cases.find(query).sort([("opened_at", DESCENDING)]).limit(limit).to_list()
        )

    async def _family(self, contact_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The live contact and every contact merged into it, directly or through others."""
        contact = await self._live(contact_id)
        merged: list[dict[str, Any]] = []
        frontier = [contact["_id"]]
        while frontier:
            found = await self.db.contacts.find({"merged_into": {"$in": frontier}}).to_list()
            merged.extend(found)
            frontier = [c["_id"] for c in found]
        return contact, merged

    async def export(self, contact_id: str) -> dict[str, Any]:
        """Everything held about the person (GDPR access)."""
        contact, merged = await self._family(contact_id)
        ids = [contact["_id"], *(c["_id"] for c in merged)]
        return {
            "contact": contact,
            "merged_contacts": merged,
            "timeline": await self.db.timeline.find({"contact_id": {"$in": ids}})
            .sort([("occurred_at", ASCENDING)])
            .to_list(),
            "cases": await self.db.cases.find({"contact_id": {"$in": ids}}).to_list(),
        }


def sentiment_trend(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean sentiment score per day, oldest first."""
    days: dict[str, list[float]] = {}
    for entry in entries:
        days.setdefault(entry["occurred_at"].date().isoformat(), []).append(
            float(entry.get("sentiment_score", 0.0))
        )
    return [
        {"day": day, "mean_score": round(sum(v) / len(v), 4), "interactions": len(v)}
        for day, v in sorted(days.items())
    ]


class ContactNotFound(LookupError):
    def __init__(self, contact_id: str) -> None:
        super().__init__(f"no contact {contact_id}")
        self.contact_id = contact_id
