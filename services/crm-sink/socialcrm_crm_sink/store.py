"""MongoDB adapter of the CRM: contacts, timeline and cases, with idempotent writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
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
        try:
            await self.db.timeline.insert_one({**write.timeline_entry, "contact_id": contact_id})
        except DuplicateKeyError:
            pass  # redelivered event: already on the timeline
        if write.case_id is None:
            return Recorded(contact_id, contact["created_by_event_id"], None, None, "")
        case = await self.db.cases.find_one_and_update(
            {"_id": write.case_id},
            {
                "$setOnInsert": {**write.case_on_insert, "contact_id": contact_id},
                "$addToSet": {"interaction_event_ids": write.timeline_entry["event_id"]},
                "$max": {"last_activity_at": write.occurred_at},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return Recorded(
            contact_id,
            contact["created_by_event_id"],
            write.case_id,
            case["opened_by_event_id"],
            case["status"],
        )

    async def _contact(self, write: CrmWrite) -> dict[str, Any]:
        query = {"identities.key": write.identity["key"]}
        update = {"$setOnInsert": {**write.contact_on_insert, "identities": [write.identity]}}
        for _ in range(2):
            try:
                contact = await self.db.contacts.find_one_and_update(
                    query, update, upsert=True, return_document=ReturnDocument.AFTER
                )
                return dict(contact)
            except DuplicateKeyError:
                continue  # a concurrent writer inserted the same identity: read it back
        raise RuntimeError(f"contact for {write.identity['key']} could not be upserted")
