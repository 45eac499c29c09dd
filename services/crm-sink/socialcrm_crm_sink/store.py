"""The CRM database (MongoDB adapter): its schema and migration, and the one object the
handlers, the connector and the tests use, composed of the store's parts.

Each part is given the collections it uses and the parts it calls: the reads
(``ContactViews``), merge suggestions (``MergeSuggestions``), identity links and merges
(``IdentityLinks``), export and erasure (``PersonalData``) and the writes (``CrmWrites``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from socialcrm_crm_sink import suggestions
from socialcrm_crm_sink.clock import Clock, utc_now
from socialcrm_crm_sink.fingerprints import SCHEME
from socialcrm_crm_sink.gdpr import Erased, PersonalData
from socialcrm_crm_sink.identity_links import IdentityLinks
from socialcrm_crm_sink.records import CrmWrite, ReplyWrite
from socialcrm_crm_sink.suggestions import MergeSuggestions
from socialcrm_crm_sink.views import ContactViews
from socialcrm_crm_sink.writes import CrmWrites, Recorded, RecordedReply

log = logging.getLogger(__name__)

# Bumped when indexes or document shapes change; ``migrate`` brings older stores up to it.
# 2: erasure fingerprints keyed (HMAC-SHA-256), merge suggestions.
# 3: anonymised timeline entries and cases under random ids, never ids derived from public ids.
STORE_SCHEMA_VERSION = 3

INDEXES: dict[str, list[IndexModel]] = {
    "contacts": [IndexModel([("identities.key", ASCENDING)], unique=True, name="identity_unique")],
    "timeline": [
        IndexModel([("contact_id", ASCENDING), ("occurred_at", DESCENDING)], name="contact_time"),
        IndexModel([("event_id", ASCENDING)], name="event_id"),
    ],
    "cases": [
        IndexModel([("queue", ASCENDING), ("status", ASCENDING)], name="queue_status"),
        IndexModel([("contact_id", ASCENDING)], name="contact"),
    ],
    suggestions.COLLECTION: suggestions.INDEXES,
}


class CrmStore:
    """Start-up migration plus everything the stream and the API do in the database, each
    call handed to the part that does it. ``clock`` dates what the parts write."""

    name = "crm-store"

    def __init__(
        self, db: AsyncDatabase[dict[str, Any]], *, fingerprint_secret: str, clock: Clock = utc_now
    ) -> None:
        self.db = db
        # The collections every part reads or writes.
        shared = {"contacts": db.contacts, "timeline": db.timeline, "cases": db.cases}
        self.views = ContactViews(**shared)
        self.suggestions = MergeSuggestions(db[suggestions.COLLECTION], clock=clock)
        self.links = IdentityLinks(
            **shared, views=self.views, suggestions=self.suggestions, clock=clock
        )
        self.personal_data = PersonalData(
            **shared,
            erasures=db.erasures,
            views=self.views,
            suggestions=self.suggestions,
            fingerprint_secret=fingerprint_secret,
            clock=clock,
        )
        self.writes = CrmWrites(
            **shared, links=self.links, personal_data=self.personal_data, clock=clock
        )

    async def start(self) -> None:
        await self.migrate()

    async def stop(self) -> None:
        return None

    async def check(self) -> None:
        return None

    async def migrate(self) -> None:
        meta = await self.db.meta.find_one({"_id": "schema"})
        current = meta["version"] if meta else 0
        for collection, indexes in INDEXES.items():
            await self.db[collection].create_indexes(indexes)
        if current < 2:
            # Fingerprints of version 1 were plain SHA-256: they cannot be re-keyed (a hash is
            # not reversible) and no longer match. No production store ever held any.
            legacy = await self.db.erasures.count_documents({"scheme": {"$ne": SCHEME}})
            if legacy:
                log.warning("unkeyed erasure fingerprints left", extra={"count": legacy})
        if current < 3:
            await self.personal_data.anonymise_derived_ids()
        if current < STORE_SCHEMA_VERSION:
            await self.db.meta.update_one(
                {"_id": "schema"}, {"$set": {"version": STORE_SCHEMA_VERSION}}, upsert=True
            )
            log.info("store schema migrated", extra={"from": current, "to": STORE_SCHEMA_VERSION})

    async def record(self, write: CrmWrite) -> Recorded | None:
        return await self.writes.record(write)

    async def record_many(self, writes: Sequence[CrmWrite]) -> list[Recorded | None]:
        return await self.writes.record_many(writes)

    async def record_reply(self, write: ReplyWrite) -> RecordedReply | None:
        return await self.writes.record_reply(write)

    async def update_case(
        self,
        case_id: str,
        *,
        status: str | None,
        assignee: str | None,
        note: str | None,
        actor: str,
    ) -> dict[str, Any]:
        return await self.writes.update_case(
            case_id, status=status, assignee=assignee, note=note, actor=actor
        )

    async def contact_view(self, contact_id: str, *, limit: int, cursor: int) -> dict[str, Any]:
        return await self.views.contact_view(contact_id, limit=limit, cursor=cursor)

    async def search(
        self, *, handle: str | None, email: str | None, name: str | None, limit: int
    ) -> list[dict[str, Any]]:
        return await self.views.search(handle=handle, email=email, name=name, limit=limit)

    async def cases(
        self, *, queue: str | None, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        return await self.views.list_cases(queue=queue, status=status, limit=limit)

    async def link(self, contact_id: str, identity: dict[str, Any]) -> dict[str, Any]:
        return await self.links.link(contact_id, identity)

    async def merge(self, winner_id: str, loser_id: str) -> dict[str, Any]:
        return await self.links.merge(winner_id, loser_id)

    async def accept_suggestion(self, suggestion_id: str, *, actor: str) -> dict[str, Any]:
        return await self.links.accept_suggestion(suggestion_id, actor=actor)

    async def export(self, contact_id: str) -> dict[str, Any]:
        return await self.personal_data.export(contact_id)

    async def plan_erasure(self, contact_id: str) -> Erased:
        return await self.personal_data.plan_erasure(contact_id)

    async def erase(self, plan: Erased) -> None:
        await self.personal_data.erase(plan)
