"""Suggested merges (MongoDB adapter): two contacts linked only by an address one of them typed.

A private message may give an address that another contact already holds ("my other email
is ..."). Nobody checked that the address is the author's, so the two contacts are not
merged: a suggestion records the pair and the keys behind it until an agent accepts it (the
contacts are then merged) or rejects it. Who decided and when stays on the suggestion.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from socialcrm_crm_sink.clock import Clock
from socialcrm_crm_sink.errors import SuggestionDecided, SuggestionNotFound
from socialcrm_crm_sink.mongo_writes import Collection

_NAMESPACE = uuid.UUID("5d0c1f9a-8e0b-4a51-9a43-1f6f3e2b7c10")

COLLECTION = "merge_suggestions"
INDEXES = [
    IndexModel([("status", ASCENDING), ("created_at", DESCENDING)], name="status_created"),
    IndexModel([("contact_ids", ASCENDING)], name="contacts"),
]
STATUSES = ("pending", "accepted", "rejected")


def suggestion_id(contact_id: str, other_contact_id: str) -> str:
    """One suggestion per pair of contacts, whichever of them typed the address."""
    first, second = sorted((contact_id, other_contact_id))
    return str(uuid.uuid5(_NAMESPACE, f"merge-suggestion/{first}/{second}"))


class MergeSuggestions:
    """The collection ``COLLECTION``; ``clock`` dates suggestions and decisions."""

    def __init__(self, collection: Collection, *, clock: Clock) -> None:
        self.collection = collection
        self.clock = clock

    async def suggest(
        self,
        *,
        contact_id: str,
        other_contact_id: str,
        identity_key: str,
        event_id: str,
        occurred_at: datetime,
    ) -> None:
        """Record (idempotently) that ``contact_id``'s author typed a key of another contact.

        A decided pair keeps its decision: a rejected pair is not suggested again.
        """
        update = {
            "$setOnInsert": {
                "contact_ids": sorted((contact_id, other_contact_id)),
                "contact_id": contact_id,
                "other_contact_id": other_contact_id,
                "event_id": event_id,
                "status": "pending",
                "created_at": self.clock(),
            },
            # Bounded: the keys are held by the other contact, whose identities are bounded.
            "$addToSet": {"identity_keys": identity_key},
            "$max": {"last_seen_at": occurred_at},
        }
        key = {"_id": suggestion_id(contact_id, other_contact_id)}
        try:
            await self.collection.update_one(key, update, upsert=True)
        except DuplicateKeyError:
            # A concurrent consumer inserted it first: this update now finds it.
            await self.collection.update_one(key, update, upsert=True)

    async def listed(self, *, status: str | None, limit: int) -> list[dict[str, Any]]:
        query = {"status": status} if status else {}
        return (
            await self.collection.find(query)
            .sort([("created_at", DESCENDING), ("_id", ASCENDING)])
            .limit(limit)
            .to_list()
        )

    async def claim(self, suggestion_id: str, *, status: str, actor: str) -> dict[str, Any]:
        """Decide a pending suggestion (who, when); raises when none is pending under that id."""
        decided = {"status": status, "decided_by": actor, "decided_at": self.clock()}
        result = await self.collection.update_one(
            {"_id": suggestion_id, "status": "pending"}, {"$set": decided}
        )
        found = await self.collection.find_one({"_id": suggestion_id})
        if found is None:
            raise SuggestionNotFound(suggestion_id)
        if result.matched_count == 0:
            raise SuggestionDecided(suggestion_id, found["status"])
        return found

    async def reopen(self, suggestion_id: str) -> None:
        """Back to pending: the decision could not be carried out."""
        await self.collection.update_one(
            {"_id": suggestion_id},
            {"$set": {"status": "pending"}, "$unset": {"decided_by": "", "decided_at": ""}},
        )

    async def forget(self, contact_ids: list[str]) -> None:
        """Erasure: the suggestions naming the person go (they hold their identity keys)."""
        await self.collection.delete_many({"contact_ids": {"$in": contact_ids}})
