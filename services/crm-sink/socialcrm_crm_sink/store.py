"""MongoDB adapter of the CRM: contacts, timeline and cases, with idempotent writes."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from socialcrm_crm_sink.policy import can_move
from socialcrm_crm_sink.records import CrmWrite, ReplyWrite, case_status_after_reply

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000

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


@dataclass(frozen=True)
class RecordedReply:
    contact_id: str
    case_id: str | None
    case_status: str
    status_changed: bool


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

    async def record(self, write: CrmWrite) -> Recorded | None:
        """Record the interaction; None when it belongs to a person erased since."""
        contact = await self._contact(write)
        if contact is None:
            return None
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

    async def record_many(self, writes: Sequence[CrmWrite]) -> list[Recorded | None]:
        """``record`` of each write, in a few bulk round trips per collection.

        Each database round trip costs far more than the documents it carries, so the
        contacts, timeline entries and cases of a whole batch are written together. The
        writes of the people a write may merge (it links a strong identity that its contact
        does not hold yet) and of people erased since take ``record`` instead, one by one,
        in order, after the others. Every write being idempotent, the store ends as
        ``record`` in order leaves it.
        """
        results: dict[int, Recorded | None] = {}
        one_by_one = await self._keys_of_people_linked(writes)
        contacts = await self._contacts_of(
            [w for w in writes if w.identity["key"] not in one_by_one]
        )
        one_by_one |= await self._erased_before(
            [
                w
                for w in writes
                if w.identity["key"] in contacts
                and w.occurred_at <= contacts[w.identity["key"]]["created_at"]
            ]
        )
        simple = {i: w for i, w in enumerate(writes) if w.identity["key"] not in one_by_one}
        now = datetime.now(UTC)
        entries = [
            {
                **w.timeline_entry,
                "contact_id": contacts[w.identity["key"]]["_id"],
                "recorded_at": now,
            }
            for w in simple.values()
        ]
        if entries:
            await _insert_new(self.db.timeline, entries)
        cases = await self._cases_of(
            [(w, contacts[w.identity["key"]]["_id"]) for w in simple.values() if w.case_id]
        )
        for i, write in simple.items():
            contact = contacts[write.identity["key"]]
            if write.case_id is None:
                results[i] = Recorded(
                    contact["_id"], contact["created_by_event_id"], None, None, ""
                )
                continue
            case = cases[write.case_id]
            results[i] = Recorded(
                contact["_id"],
                contact["created_by_event_id"],
                write.case_id,
                case["opened_by_event_id"],
                case["status"],
            )
        for i, write in enumerate(writes):
            if i not in results:
                results[i] = await self.record(write)
        return [results[i] for i in range(len(writes))]

    async def _keys_of_people_linked(self, writes: Sequence[CrmWrite]) -> set[str]:
        """Identity keys of every contact that a write of the batch may link or merge."""
        linking = [w for w in writes if w.strong_identities]
        if not linking:
            return set()
        keys = {w.identity["key"] for w in linking}
        keys |= {s["key"] for w in linking for s in w.strong_identities}
        found = await self.db.contacts.find({"identities.key": {"$in": list(keys)}}).to_list()
        holders = {i["key"]: c for c in found for i in c["identities"]}
        involved: set[str] = set()
        for write in linking:
            contact = holders.get(write.identity["key"])
            held = {i["key"] for i in contact["identities"]} if contact else set()
            new = {s["key"] for s in write.strong_identities} - held
            if not new:
                continue
            involved |= {write.identity["key"], *held, *new}
            for key in new & holders.keys():
                involved |= {i["key"] for i in holders[key]["identities"]}
        return involved

    async def _contacts_of(self, writes: Sequence[CrmWrite]) -> dict[str, dict[str, Any]]:
        """The contact holding each write's identity, created by the first write if none does."""
        first_by_key = {w.identity["key"]: w for w in reversed(writes)}
        if not first_by_key:
            return {}
        await _bulk(
            self.db.contacts,
            [
                UpdateOne(
                    {"identities.key": key},
                    {"$setOnInsert": {**w.contact_on_insert, "identities": [w.identity]}},
                    upsert=True,
                )
                for key, w in first_by_key.items()
            ],
        )
        found = await self.db.contacts.find(
            {"identities.key": {"$in": list(first_by_key)}}
        ).to_list()
        contacts = {i["key"]: c for c in found for i in c["identities"] if i["key"] in first_by_key}
        missing = set(first_by_key) - set(contacts)
        if missing:
            raise RuntimeError(f"contacts of {sorted(missing)} not found after their upsert")
        return contacts

    async def _erased_before(self, writes: Sequence[CrmWrite]) -> set[str]:
        """Identity keys of the writes whose person was erased after the event occurred."""
        if not writes:
            return set()
        fingerprints = {w.identity["key"]: erasure_fingerprint(w.identity["key"]) for w in writes}
        found = await self.db.erasures.find({"_id": {"$in": list(fingerprints.values())}}).to_list()
        erased_at = {e["_id"]: e["erased_at"] for e in found}
        return {
            w.identity["key"]
            for w in writes
            if fingerprints[w.identity["key"]] in erased_at
            and w.occurred_at <= erased_at[fingerprints[w.identity["key"]]]
        }

    async def _cases_of(self, writes: Sequence[tuple[CrmWrite, str]]) -> dict[str, dict[str, Any]]:
        """Open or update each write's case (in order: the first write opens it); the cases."""
        if not writes:
            return {}
        await _bulk(
            self.db.cases,
            [
                UpdateOne(
                    {"_id": w.case_id},
                    {
                        "$setOnInsert": {**w.case_on_insert, "contact_id": contact_id},
                        "$addToSet": {"interaction_event_ids": w.timeline_entry["event_id"]},
                        "$max": {"last_activity_at": w.occurred_at},
                    },
                    upsert=True,
                )
                for w, contact_id in writes
            ],
        )
        ids = list({w.case_id for w, _ in writes})
        return {c["_id"]: c for c in await self.db.cases.find({"_id": {"$in": ids}}).to_list()}

    async def record_reply(self, write: ReplyWrite) -> RecordedReply | None:
        """Put the reply on the timeline of the interaction's contact and update its case.

        None when the interaction is not recorded (yet). Idempotent: the timeline entry's id
        and the case history entry are keyed by the reply's event id.
        """
        source = await self.db.timeline.find_one(
            {"_id": f"{write.interaction_event_id}:interaction"}
        )
        if source is None:
            return None
        contact_id, case_id = source["contact_id"], source.get("case_id")
        if contact_id is None:
            # The person was erased: their conversations are no longer followed.
            return RecordedReply(contact_id="", case_id=None, case_status="", status_changed=False)
        with contextlib.suppress(DuplicateKeyError):
            await self.db.timeline.insert_one(
                {
                    **write.timeline_entry,
                    "contact_id": contact_id,
                    "case_id": case_id,
                    "recorded_at": datetime.now(UTC),
                }
            )
        if case_id is None:
            return RecordedReply(contact_id, None, "", status_changed=False)
        case = await self.db.cases.find_one({"_id": case_id})
        if case is None:
            return RecordedReply(contact_id, None, "", status_changed=False)
        if any(h.get("event_id") == write.event_id for h in case.get("history", [])):
            return RecordedReply(contact_id, case_id, case["status"], status_changed=False)
        status = case_status_after_reply(case["status"], write)
        entry = {"at": write.occurred_at, "by": write.agent_id, "event_id": write.event_id}
        update: dict[str, Any] = {
            "$max": {"last_activity_at": write.occurred_at},
            "$push": {"history": entry},
        }
        if status != case["status"]:
            update["$set"] = {"status": status}
            entry["status"] = status
        if write.has_text:
            update["$min"] = {"first_response_at": write.occurred_at}
        # Guarded by the status read above: a concurrent change makes the retry re-decide.
        result = await self.db.cases.update_one({"_id": case_id, "status": case["status"]}, update)
        if result.matched_count == 0:
            return await self.record_reply(write)
        return RecordedReply(contact_id, case_id, status, status_changed=status != case["status"])

    async def _contact(self, write: CrmWrite) -> dict[str, Any] | None:
        contact = await _upsert(
            self.db.contacts,
            {"identities.key": write.identity["key"]},
            {"$setOnInsert": {**write.contact_on_insert, "identities": [write.identity]}},
        )
        # Only an event as old as the contact can predate an erasure (a replay): the check
        # costs a read, so the steady stream of newer events skips it.
        if write.occurred_at <= contact["created_at"] and await self.erased_after(
            write.identity["key"], write.occurred_at
        ):
            await self.db.contacts.delete_one(
                {"_id": contact["_id"], "created_by_event_id": write.timeline_entry["event_id"]}
            )
            log.info("event of an erased person ignored", extra={"contact_id": contact["_id"]})
            return None
        for identity in write.strong_identities:
            contact = await self._attach(contact, identity)
        return contact

    async def _attach(self, contact: dict[str, Any], identity: dict[str, Any]) -> dict[str, Any]:
        """Give ``contact`` a strong identity; its current holder, if any, is merged with it."""
        if any(held["key"] == identity["key"] for held in contact["identities"]):
            return contact
        holder = await self.db.contacts.find_one({"identities.key": identity["key"]})
        if holder is not None:
            # The older contact survives: the same id whatever order the messages come in.
            winner, loser = sorted((contact, holder), key=lambda c: (c["created_at"], c["_id"]))
            return await self.merge(winner["_id"], loser["_id"])
        try:
            await self.db.contacts.update_one(
                {"_id": contact["_id"]}, {"$addToSet": {"identities": identity}}
            )
        except DuplicateKeyError:
            # Another consumer attached it meanwhile: merge with that one instead.
            return await self._attach(contact, identity)
        return await self._live(contact["_id"])

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

    async def link(self, contact_id: str, identity: dict[str, Any]) -> dict[str, Any]:
        """Manual link of an identity; refused when another contact holds it (merge instead)."""
        contact = await self._live(contact_id)
        holder = await self.db.contacts.find_one({"identities.key": identity["key"]})
        if holder is not None and holder["_id"] != contact["_id"]:
            raise IdentityTaken(identity["key"], holder["_id"])
        try:
            await self.db.contacts.update_one(
                {"_id": contact["_id"]}, {"$addToSet": {"identities": identity}}
            )
        except DuplicateKeyError as error:
            raise IdentityTaken(identity["key"], "") from error
        return await self._live(contact["_id"])

    async def merge(self, winner_id: str, loser_id: str) -> dict[str, Any]:
        """Fold ``loser`` into ``winner``: identities and history move, loser becomes a redirect."""
        winner = await self._live(winner_id)
        loser = await self._live(loser_id)
        if winner["_id"] == loser["_id"]:
            return winner
        moved = [i for i in loser["identities"] if not i["key"].startswith("merged:")]
        # Identity keys are unique across contacts: free them on the loser before the winner
        # takes them. The placeholder keeps the loser in the unique index with a key of its own.
        await self.db.contacts.update_one(
            {"_id": loser["_id"]},
            {
                "$set": {
                    "merged_into": winner["_id"],
                    "merged_at": datetime.now(UTC),
                    "merged_identities": moved,
                    "identities": [{"key": f"merged:{loser['_id']}"}],
                }
            },
        )
        for identity in moved:
            await self.db.contacts.update_one(
                {"_id": winner["_id"]}, {"$addToSet": {"identities": identity}}
            )
        await self.db.timeline.update_many(
            {"contact_id": loser["_id"]}, {"$set": {"contact_id": winner["_id"]}}
        )
        await self.db.cases.update_many(
            {"contact_id": loser["_id"]}, {"$set": {"contact_id": winner["_id"]}}
        )
        log.info("contacts merged", extra={"winner": winner["_id"], "loser": loser["_id"]})
        return await self._live(winner["_id"])

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

    async def update_case(
        self,
        case_id: str,
        *,
        status: str | None,
        assignee: str | None,
        note: str | None,
        actor: str,
    ) -> dict[str, Any]:
        case = await self.db.cases.find_one({"_id": case_id})
        if case is None:
            raise CaseNotFound(case_id)
        changes: dict[str, Any] = {}
        if status is not None and status != case["status"]:
            if not can_move(case["status"], status):
                raise BadTransition(case["status"], status)
            changes["status"] = status
        if assignee is not None:
            changes["assignee"] = assignee
        entry = {"at": datetime.now(UTC), "by": actor, **changes}
        if note:
            entry["note"] = note
        # Only the status read above may be replaced: a concurrent change makes this a conflict.
        result = await self.db.cases.update_one(
            {"_id": case_id, "status": case["status"]},
            {"$set": changes, "$push": {"history": entry}}
            if changes
            else {"$push": {"history": entry}},
        )
        if result.matched_count == 0:
            raise BadTransition(case["status"], status or case["status"])
        updated = await self.db.cases.find_one({"_id": case_id})
        assert updated is not None
        return updated

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

    async def plan_erasure(self, contact_id: str) -> Erased:
        """What erasing the person touches: every contact merged into theirs, their events."""
        contact, merged = await self._family(contact_id)
        ids = [contact["_id"], *(c["_id"] for c in merged)]
        keys = [i["key"] for i in contact["identities"]]
        for loser in merged:
            keys.extend(i["key"] for i in loser.get("merged_identities", []))
        entries = await self.db.timeline.find(
            {"contact_id": {"$in": ids}, "type": "interaction"}, {"event_id": 1}
        ).to_list()
        return Erased(
            contact_ids=ids,
            identity_keys=[k for k in keys if not k.startswith("merged:")],
            interaction_event_ids=[e["event_id"] for e in entries],
        )

    async def erase(self, plan: Erased) -> None:
        """Erase the person (GDPR): contacts deleted, timeline and cases anonymised.

        Timeline entries and cases keep what KPIs need (language, polarity, queue, times) and
        lose the text, the ids that lead back to the person and the link to the contact. The
        identity keys are remembered only as hashes with the time of erasure, so that a replay
        of the person's older events does not bring them back. Idempotent.
        """
        erased_at = datetime.now(UTC)
        for key in plan.identity_keys:
            await self.db.erasures.update_one(
                {"_id": erasure_fingerprint(key)}, {"$set": {"erased_at": erased_at}}, upsert=True
            )
        anonymised = {"contact_id": None, "conversation_id": "", "erased_at": erased_at}
        await self.db.timeline.update_many(
            {"contact_id": {"$in": plan.contact_ids}},
            {"$set": {**anonymised, "text": "", "external_id": "", "agent_id": ""}},
        )
        await self.db.cases.update_many(
            {"contact_id": {"$in": plan.contact_ids}}, {"$set": {**anonymised, "history": []}}
        )
        await self.db.contacts.delete_many({"_id": {"$in": plan.contact_ids}})
        log.info("contact erased", extra={"contact_id": plan.contact_ids[0]})

    async def erased_after(self, identity_key: str, occurred_at: datetime) -> bool:
        """Whether the person behind ``identity_key`` was erased after ``occurred_at``."""
        erasure = await self.db.erasures.find_one({"_id": erasure_fingerprint(identity_key)})
        return erasure is not None and occurred_at <= erasure["erased_at"]


@dataclass(frozen=True)
class Erased:
    # The live contact first, then those merged into it.
    contact_ids: list[str]
    identity_keys: list[str]
    # The person's interactions: downstream stores keyed by them (router timers) forget them.
    interaction_event_ids: list[str]


def erasure_fingerprint(identity_key: str) -> str:
    return hashlib.sha256(identity_key.encode()).hexdigest()


TREND_ENTRIES = 200
HANDLE_KINDS = ("x", "facebook", "instagram", "youtube", "forum", "community", "chat")


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


class CaseNotFound(LookupError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"no case {case_id}")


class BadTransition(ValueError):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"case cannot go from {current} to {target}")


class ContactNotFound(LookupError):
    def __init__(self, contact_id: str) -> None:
        super().__init__(f"no contact {contact_id}")
        self.contact_id = contact_id


class IdentityTaken(ValueError):
    def __init__(self, key: str, holder: str) -> None:
        super().__init__(f"identity {key} belongs to contact {holder}")
        self.key = key
        self.holder = holder


async def _bulk(collection: AsyncCollection[dict[str, Any]], operations: list[UpdateOne]) -> None:
    """Apply idempotent upserts in order; those that lost a race on a unique key are retried
    (they then update the winner's document)."""
    for _ in range(3):
        try:
            await collection.bulk_write(operations, ordered=True)
            return
        except BulkWriteError as error:
            if any(e["code"] != DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise
            # An ordered bulk stops at its first error: what follows it was not applied.
            operations = operations[error.details["writeErrors"][0]["index"] :]
    raise RuntimeError(f"upserts in {collection.name} lost every race")


async def _insert_new(
    collection: AsyncCollection[dict[str, Any]], documents: list[dict[str, Any]]
) -> None:
    """Insert the documents whose _id is not there yet (a redelivery inserts nothing)."""
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        if any(e["code"] != DUPLICATE_KEY for e in error.details["writeErrors"]):
            raise


async def _upsert(
    collection: AsyncCollection[dict[str, Any]], query: dict[str, Any], update: dict[str, Any]
) -> dict[str, Any]:
    """Upsert and return the document, safe against a concurrent writer of the same key.

    Two upserts racing on one unique key: the loser gets DuplicateKeyError (MongoDB)
    or no document (the local server); the retry then updates the winner's document.
    An update then a read, not findAndModify: the local server's findAndModify scans the
    whole collection (38 ms a call at 2,000 documents, against 3 ms for both), and the
    writes here need no atomic read-back, since they only add to the document (derived
    ids, $setOnInsert, $addToSet, $max), and the read finds the live holder of the key.
    """
    for _ in range(3):
        try:
            await collection.update_one(query, update, upsert=True)
        except DuplicateKeyError:
            continue
        document = await collection.find_one(query)
        if document is not None:
            return document
    raise RuntimeError(f"upsert of {query} in {collection.name} lost every race")
