"""The CRM database (MongoDB adapter): its schema and migration, and one object holding
the writes, identity links, read views and GDPR operations."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from socialcrm_crm_sink import suggestions
from socialcrm_crm_sink.fingerprints import SCHEME
from socialcrm_crm_sink.suggestions import MergeSuggestions
from socialcrm_crm_sink.writes import CrmWrites

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


class CrmStore(CrmWrites):
    """Start-up migration plus everything the stream and the API do in the database."""

    name = "crm-store"

    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, fingerprint_secret: str) -> None:
        self.db = db
        self.fingerprint_secret = fingerprint_secret
        self.suggestions = MergeSuggestions(db)

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
            await self.anonymise_derived_ids()
        if current < STORE_SCHEMA_VERSION:
            await self.db.meta.update_one(
                {"_id": "schema"}, {"$set": {"version": STORE_SCHEMA_VERSION}}, upsert=True
            )
            log.info("store schema migrated", extra={"from": current, "to": STORE_SCHEMA_VERSION})
