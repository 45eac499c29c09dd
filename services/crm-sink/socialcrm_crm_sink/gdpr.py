"""A person's data under the GDPR in the CRM database (MongoDB adapter): export and erasure.

The Kafka side of an erasure (tombstones, the CONTACT_ERASED event) is ``erasure_publisher``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne

from socialcrm_crm_sink.anonymised import (
    ID_SCHEME,
    NEW_ID,
    anonymised_case,
    anonymised_entry,
    interaction_key,
)
from socialcrm_crm_sink.clock import Clock
from socialcrm_crm_sink.fingerprints import SCHEME, erasure_fingerprint
from socialcrm_crm_sink.identities import erased_author_keys
from socialcrm_crm_sink.mongo_writes import Collection, insert_new
from socialcrm_crm_sink.records import CrmWrite
from socialcrm_crm_sink.suggestions import MergeSuggestions
from socialcrm_crm_sink.views import ContactViews

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Erased:
    # The live contact first, then those merged into it.
    contact_ids: list[str]
    identity_keys: list[str]
    # The person's interactions (event id, conversation id): the router's SLA state of each,
    # held by the owner of the conversation's partition, forgets the author.
    interactions: list[tuple[str, str]]
    # The person's network accounts as the router names them (identities.erased_author_keys):
    # its owners forget them even where they hold no state of the interactions.
    author_keys: list[str] = field(default_factory=list)


class PersonalData:
    """Export, erasure, and the check that keeps an erased person's replayed events out.

    ``erasures`` holds the fingerprints (keyed with ``fingerprint_secret``) of erased
    identities and interactions, dated by ``clock``; ``views`` finds the live contact.
    """

    def __init__(
        self,
        *,
        contacts: Collection,
        timeline: Collection,
        cases: Collection,
        erasures: Collection,
        views: ContactViews,
        suggestions: MergeSuggestions,
        fingerprint_secret: str,
        clock: Clock,
    ) -> None:
        self.contacts = contacts
        self.timeline = timeline
        self.cases = cases
        self.erasures = erasures
        self.views = views
        self.suggestions = suggestions
        self.fingerprint_secret = fingerprint_secret
        self.clock = clock

    async def _family(self, contact_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The live contact and every contact merged into it, directly or through others."""
        contact = await self.views.live(contact_id)
        merged: list[dict[str, Any]] = []
        frontier = [contact["_id"]]
        while frontier:
            found = await self.contacts.find({"merged_into": {"$in": frontier}}).to_list()
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
            "timeline": await self.timeline.find({"contact_id": {"$in": ids}})
            .sort([("occurred_at", ASCENDING)])
            .to_list(),
            "cases": await self.cases.find({"contact_id": {"$in": ids}}).to_list(),
        }

    async def plan_erasure(self, contact_id: str) -> Erased:
        """What erasing the person touches: every contact merged into theirs, their events."""
        contact, merged = await self._family(contact_id)
        ids = [contact["_id"], *(c["_id"] for c in merged)]
        identities = list(contact["identities"])
        for loser in merged:
            identities.extend(loser.get("merged_identities", []))
        keys = [i["key"] for i in identities]
        entries = await self.timeline.find(
            {"contact_id": {"$in": ids}, "type": "interaction"},
            {"event_id": 1, "conversation_id": 1},
        ).to_list()
        return Erased(
            contact_ids=ids,
            identity_keys=[k for k in keys if not k.startswith("merged:")],
            interactions=[(e["event_id"], e.get("conversation_id", "")) for e in entries],
            author_keys=erased_author_keys(identities),
        )

    async def erase(self, plan: Erased) -> None:
        """Erase the person (GDPR): contacts deleted, timeline and cases anonymised.

        Timeline entries and cases keep what KPIs need (``anonymised``) under random ids. The
        identity keys and the interactions are remembered only as keyed fingerprints with the
        time of erasure, so that a replay of the person's older events does not bring them
        back and a reply still in flight is dropped. Idempotent.
        """
        erased_at = self.clock()
        keys = [*plan.identity_keys, *(interaction_key(e) for e, _ in plan.interactions)]
        for key in keys:
            await self.erasures.update_one(
                {"_id": self._fingerprint(key)},
                {"$set": {"erased_at": erased_at, "scheme": SCHEME}},
                upsert=True,
            )
        await self.suggestions.forget(plan.contact_ids)
        held = {"contact_id": {"$in": plan.contact_ids}}
        case_ids = await self._move(self.cases, held, lambda case: anonymised_case(case, erased_at))
        await self._move(
            self.timeline, held, lambda entry: anonymised_entry(entry, case_ids, erased_at)
        )
        await self.contacts.delete_many({"_id": {"$in": plan.contact_ids}})
        log.info("contact erased", extra={"contact_id": plan.contact_ids[0]})

    async def anonymise_derived_ids(self) -> None:
        """Store schema 3: documents anonymised with the ids derived from public ids move to
        random ids (their ``erased_at`` kept)."""
        older = {"erased_at": {"$exists": True}, "ids": {"$ne": ID_SCHEME}}
        case_ids = await self._move(
            self.cases, older, lambda case: anonymised_case(case, case["erased_at"])
        )
        await self._move(
            self.timeline,
            older,
            lambda entry: anonymised_entry(entry, case_ids, entry["erased_at"]),
        )

    async def _move(
        self,
        collection: Collection,
        query: dict[str, Any],
        anonymised: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> dict[str, str]:
        """Replace each document matching ``query`` by ``anonymised(document)`` under a random
        id; the new id of each old one.

        The random id is first kept on the old document: a retry after a failure half-way
        moves it under the same id, never into a second copy.
        """
        missing = await collection.find({**query, NEW_ID: {"$exists": False}}, {"_id": 1}).to_list()
        if missing:
            await collection.bulk_write(
                [
                    UpdateOne(
                        {"_id": d["_id"], NEW_ID: {"$exists": False}},
                        {"$set": {NEW_ID: str(uuid.uuid4())}},
                    )
                    for d in missing
                ]
            )
        documents = await collection.find(query).to_list()
        if not documents:
            return {}
        await insert_new(collection, [anonymised(d) for d in documents])
        await collection.delete_many({"_id": {"$in": [d["_id"] for d in documents]}})
        return {d["_id"]: d[NEW_ID] for d in documents}

    async def interaction_erased(self, event_id: str) -> bool:
        """Whether the interaction belonged to a person erased since."""
        fingerprint = self._fingerprint(interaction_key(event_id))
        return await self.erasures.find_one({"_id": fingerprint}) is not None

    async def erased_after(self, identity_key: str, occurred_at: datetime) -> bool:
        """Whether the person behind ``identity_key`` was erased after ``occurred_at``."""
        erasure = await self.erasures.find_one({"_id": self._fingerprint(identity_key)})
        return erasure is not None and occurred_at <= erasure["erased_at"]

    def _fingerprint(self, identity_key: str) -> str:
        return erasure_fingerprint(identity_key, self.fingerprint_secret)

    async def erased_before(self, writes: Sequence[CrmWrite]) -> set[str]:
        """Identity keys of the writes whose person was erased after the event occurred."""
        if not writes:
            return set()
        fingerprints = {w.identity["key"]: self._fingerprint(w.identity["key"]) for w in writes}
        found = await self.erasures.find({"_id": {"$in": list(fingerprints.values())}}).to_list()
        erased_at = {e["_id"]: e["erased_at"] for e in found}
        return {
            w.identity["key"]
            for w in writes
            if fingerprints[w.identity["key"]] in erased_at
            and w.occurred_at <= erased_at[fingerprints[w.identity["key"]]]
        }
