"""MongoDB adapter of the CRM: contacts, timeline and cases, with idempotent writes."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from socialcrm_crm_sink.records import CrmWrite

log = logging.getLogger(__name__)

# Bumped when indexes or document shapes change; ``migrate`` brings older stores up to it.
STORE_SCHEMA_VERSION = 1

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
}


@dataclass(frozen=True)
class Recorded:
    contact_id: str
    contact_created_by: str
    case_id: str | None
    case_opened_by: str | None
    case_status: str


class CrmStore:
    """Start-up migration plus the writes of one routed interaction."""

    name = "crm-store"

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

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
        if current < STORE_SCHEMA_VERSION:
            await self.db.meta.update_one(
                {"_id": "schema"}, {"$set": {"version": STORE_SCHEMA_VERSION}}, upsert=True
            )
            log.info("store schema migrated", extra={"from": current, "to": STORE_SCHEMA_VERSION})

    async def record(self, write: CrmWrite) -> Recorded:
        contact = await self._contact(write)
        contact_id = contact["_id"]
        # A redelivered event is already on the timeline: its _id is derived from the event.
        with contextlib.suppress(DuplicateKeyError):
            await self.db.timeline.insert_one(
                {**write.timeline_entry, "contact_id": contact_id, "recorded_at": datetime.now(UTC)}
            )
        if write.case_id is None:
            return Recorded(contact_id, contact["created_by_event_id"], None, None, "")
        case = await _upsert(
            self.db.cases,
            {"_id": write.case_id},
            {
                "$setOnInsert": {**write.case_on_insert, "contact_id": contact_id},
                "$addToSet": {"interaction_event_ids": write.timeline_entry["event_id"]},
                "$max": {"last_activity_at": write.occurred_at},
            },
        )
        return Recorded(
            contact_id,
            contact["created_by_event_id"],
            write.case_id,
            case["opened_by_event_id"],
            case["status"],
        )

    async def _contact(self, write: CrmWrite) -> dict[str, Any]:
        return await _upsert(
            self.db.contacts,
            {"identities.key": write.identity["key"]},
            {"$setOnInsert": {**write.contact_on_insert, "identities": [write.identity]}},
        )


async def _upsert(
    collection: AsyncCollection[dict[str, Any]], query: dict[str, Any], update: dict[str, Any]
) -> dict[str, Any]:
    """Upsert and return the document, safe against a concurrent writer of the same key.

    Two upserts racing on one unique key: the loser gets DuplicateKeyError (MongoDB)
    or no document (the local server); the retry then updates the winner's document.
    """
    for _ in range(3):
        try:
            document = await collection.find_one_and_update(
                query, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            continue
        if document is not None:
            return document
    raise RuntimeError(f"upsert of {query} in {collection.name} lost every race")
