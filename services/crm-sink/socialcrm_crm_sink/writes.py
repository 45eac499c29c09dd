"""The CRM's writes (MongoDB adapter): routed interactions, replies, agents' case changes.

Every write is idempotent (ids derived from the source event), so a redelivery or a
replay changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import DuplicateKeyError

from socialcrm_crm_sink.clock import Clock
from socialcrm_crm_sink.errors import BadTransition, CaseErased, CaseNotFound
from socialcrm_crm_sink.gdpr import PersonalData
from socialcrm_crm_sink.identity_links import IdentityLinks
from socialcrm_crm_sink.limits import history_push
from socialcrm_crm_sink.mongo_writes import Collection, bulk, insert_new, upsert
from socialcrm_crm_sink.policy import can_move
from socialcrm_crm_sink.records import CrmWrite, ReplyWrite, case_status_after_reply

log = logging.getLogger(__name__)


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


def claimed(write: CrmWrite) -> list[dict[str, Any]]:
    """Every identity ``write`` may link, or suggest a merge for."""
    return [*write.strong_identities, *write.typed_identities, *write.suggested_identities]


class CrmWrites:
    """Records interactions and replies, batch by batch; applies agents' case changes.

    ``links`` links, merges or suggests for the identities a message claims;
    ``personal_data`` tells which events belong to a person erased since; ``clock`` dates
    what is recorded and agents' changes.
    """

    def __init__(
        self,
        *,
        contacts: Collection,
        timeline: Collection,
        cases: Collection,
        links: IdentityLinks,
        personal_data: PersonalData,
        clock: Clock,
    ) -> None:
        self.contacts = contacts
        self.timeline = timeline
        self.cases = cases
        self.links = links
        self.personal_data = personal_data
        self.clock = clock

    async def record(self, write: CrmWrite) -> Recorded | None:
        """Record the interaction; None when it belongs to a person erased since."""
        contact = await self._contact(write)
        if contact is None:
            return None
        contact_id = contact["_id"]
        # A redelivered event is already on the timeline: its _id is derived from the event.
        with contextlib.suppress(DuplicateKeyError):
            await self.timeline.insert_one(
                {**write.timeline_entry, "contact_id": contact_id, "recorded_at": self.clock()}
            )
        if write.case_id is None:
            return Recorded(contact_id, contact["created_by_event_id"], None, None, "")
        case = await upsert(
            self.cases,
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
        one_by_one |= await self.personal_data.erased_before(
            [
                w
                for w in writes
                if w.identity["key"] in contacts
                and w.occurred_at <= contacts[w.identity["key"]]["created_at"]
            ]
        )
        simple = {i: w for i, w in enumerate(writes) if w.identity["key"] not in one_by_one}
        now = self.clock()
        entries = [
            {
                **w.timeline_entry,
                "contact_id": contacts[w.identity["key"]]["_id"],
                "recorded_at": now,
            }
            for w in simple.values()
        ]
        if entries:
            await insert_new(self.timeline, entries)
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
        linking = [w for w in writes if claimed(w)]
        if not linking:
            return set()
        keys = {w.identity["key"] for w in linking}
        keys |= {s["key"] for w in linking for s in claimed(w)}
        found = await self.contacts.find({"identities.key": {"$in": list(keys)}}).to_list()
        holders = {i["key"]: c for c in found for i in c["identities"]}
        involved: set[str] = set()
        for write in linking:
            contact = holders.get(write.identity["key"])
            held = {i["key"] for i in contact["identities"]} if contact else set()
            new = {s["key"] for s in claimed(write)} - held
            if not new:
                continue
            involved |= {write.identity["key"], *held, *new}
            for key in new & holders.keys():
                involved |= {i["key"] for i in holders[key]["identities"]}
        return involved

    async def _contacts_of(self, writes: Sequence[CrmWrite]) -> dict[str, dict[str, Any]]:
        """The contact holding each write's identity, created by the first write if none does.

        Only the contacts not found are written: a known customer's event changes nothing
        about the contact, and a write costs the database more than the read it saves."""
        first_by_key = {w.identity["key"]: w for w in reversed(writes)}
        if not first_by_key:
            return {}
        contacts = await self._holders(list(first_by_key))
        new = [w for key, w in first_by_key.items() if key not in contacts]
        if new:
            await bulk(
                self.contacts,
                [
                    UpdateOne(
                        {"identities.key": w.identity["key"]},
                        {"$setOnInsert": {**w.contact_on_insert, "identities": [w.identity]}},
                        upsert=True,
                    )
                    for w in new
                ],
            )
            contacts |= await self._holders([w.identity["key"] for w in new])
        missing = set(first_by_key) - set(contacts)
        if missing:
            raise RuntimeError(f"contacts of {sorted(missing)} not found after their upsert")
        return contacts

    async def _holders(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The contact holding each of ``keys``, by key (keys nobody holds are absent)."""
        wanted = set(keys)
        found = await self.contacts.find({"identities.key": {"$in": keys}}).to_list()
        return {i["key"]: c for c in found for i in c["identities"] if i["key"] in wanted}

    async def _cases_of(self, writes: Sequence[tuple[CrmWrite, str]]) -> dict[str, dict[str, Any]]:
        """Open or update each write's case (the first write of a case opens it); the cases.

        One upsert per case, however many of the batch's writes it takes: the same
        document as one upsert per write in order ($setOnInsert of the first, every
        event id added, the latest activity kept)."""
        if not writes:
            return {}
        by_case: dict[str, list[tuple[CrmWrite, str]]] = {}
        for write, contact_id in writes:
            by_case.setdefault(str(write.case_id), []).append((write, contact_id))
        await bulk(
            self.cases,
            [
                UpdateOne(
                    {"_id": case_id},
                    {
                        "$setOnInsert": {**first.case_on_insert, "contact_id": contact_id},
                        "$addToSet": {
                            "interaction_event_ids": {
                                "$each": [w.timeline_entry["event_id"] for w, _ in taken]
                            }
                        },
                        "$max": {"last_activity_at": max(w.occurred_at for w, _ in taken)},
                    },
                    upsert=True,
                )
                for case_id, taken in by_case.items()
                for first, contact_id in taken[:1]
            ],
        )
        ids = list(by_case)
        return {c["_id"]: c for c in await self.cases.find({"_id": {"$in": ids}}).to_list()}

    async def record_reply(self, write: ReplyWrite) -> RecordedReply | None:
        """Put the reply on the timeline of the interaction's contact and update its case.

        None when the interaction is not recorded (yet). Idempotent: the timeline entry's id
        and the case history entry are keyed by the reply's event id.
        """
        source = await self.timeline.find_one({"_id": f"{write.interaction_event_id}:interaction"})
        if source is None:
            if await self.personal_data.interaction_erased(write.interaction_event_id):
                return RecordedReply(
                    contact_id="", case_id=None, case_status="", status_changed=False
                )
            return None
        contact_id, case_id = source["contact_id"], source.get("case_id")
        if contact_id is None:
            # The person was erased: their conversations are no longer followed.
            return RecordedReply(contact_id="", case_id=None, case_status="", status_changed=False)
        with contextlib.suppress(DuplicateKeyError):
            await self.timeline.insert_one(
                {
                    **write.timeline_entry,
                    "contact_id": contact_id,
                    "case_id": case_id,
                    "recorded_at": self.clock(),
                }
            )
        if case_id is None:
            return RecordedReply(contact_id, None, "", status_changed=False)
        case = await self.cases.find_one({"_id": case_id})
        if case is None:
            return RecordedReply(contact_id, None, "", status_changed=False)
        # The history keeps its newest entries only: a reply redelivered after 200 newer
        # changes of its case enters the history again (the timeline still holds it once).
        if any(h.get("event_id") == write.event_id for h in case.get("history", [])):
            return RecordedReply(contact_id, case_id, case["status"], status_changed=False)
        status = case_status_after_reply(case["status"], write)
        entry = {"at": write.occurred_at, "by": write.agent_id, "event_id": write.event_id}
        update: dict[str, Any] = {
            "$max": {"last_activity_at": write.occurred_at},
            **history_push(entry, len(case.get("history", []))),
        }
        if status != case["status"]:
            update["$set"] = {"status": status}
            entry["status"] = status
        if write.has_text:
            update["$min"] = {"first_response_at": write.occurred_at}
        # Guarded by the status read above: a concurrent change makes the retry re-decide.
        result = await self.cases.update_one({"_id": case_id, "status": case["status"]}, update)
        if result.matched_count == 0:
            return await self.record_reply(write)
        return RecordedReply(contact_id, case_id, status, status_changed=status != case["status"])

    async def _contact(self, write: CrmWrite) -> dict[str, Any] | None:
        # A known customer's event changes nothing about the contact: read, write only if new.
        query = {"identities.key": write.identity["key"]}
        contact = await self.contacts.find_one(query) or await upsert(
            self.contacts,
            query,
            {"$setOnInsert": {**write.contact_on_insert, "identities": [write.identity]}},
        )
        # Only an event as old as the contact can predate an erasure (a replay): the check
        # costs a read, so the steady stream of newer events skips it.
        if write.occurred_at <= contact["created_at"] and await self.personal_data.erased_after(
            write.identity["key"], write.occurred_at
        ):
            await self.contacts.delete_one(
                {"_id": contact["_id"], "created_by_event_id": write.timeline_entry["event_id"]}
            )
            log.info("event of an erased person ignored", extra={"contact_id": contact["_id"]})
            return None
        return await self.links.claim(contact, write)

    async def update_case(
        self,
        case_id: str,
        *,
        status: str | None,
        assignee: str | None,
        note: str | None,
        actor: str,
    ) -> dict[str, Any]:
        case = await self.cases.find_one({"_id": case_id})
        if case is None:
            raise CaseNotFound(case_id)
        if case.get("erased_at"):
            raise CaseErased(case_id)
        changes: dict[str, Any] = {}
        if status is not None and status != case["status"]:
            if not can_move(case["status"], status):
                raise BadTransition(case["status"], status)
            changes["status"] = status
        if assignee is not None:
            changes["assignee"] = assignee
        entry = {"at": self.clock(), "by": actor, **changes}
        if note:
            entry["note"] = note
        update = history_push(entry, len(case.get("history", [])))
        if changes:
            update["$set"] = changes
        # Only the status read above may be replaced: a concurrent change makes this a conflict.
        result = await self.cases.update_one(
            {"_id": case_id, "status": case["status"], "erased_at": {"$exists": False}}, update
        )
        if result.matched_count == 0:
            raise BadTransition(case["status"], status or case["status"])
        updated = await self.cases.find_one({"_id": case_id})
        assert updated is not None
        return updated
