"""Identity links and merges of contacts (MongoDB adapter).

Keys vouched for by a channel link, and merge their holder, automatically; keys merely
typed in a message link only when nobody holds them, else a merge suggestion waits for an
agent; admins link and merge by hand. A merged contact becomes a redirect to the survivor.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.errors import DuplicateKeyError

from socialcrm_crm_sink.clock import Clock
from socialcrm_crm_sink.errors import ContactNotFound, IdentityTaken, TooManyIdentities
from socialcrm_crm_sink.limits import identities_fit
from socialcrm_crm_sink.mongo_writes import Collection
from socialcrm_crm_sink.records import CrmWrite
from socialcrm_crm_sink.suggestions import MergeSuggestions
from socialcrm_crm_sink.views import ContactViews

log = logging.getLogger(__name__)


class IdentityLinks:
    """Links an identity to a contact, merges two contacts, decides merge suggestions.

    A merge moves the loser's timeline entries and cases to the winner; ``views`` finds the
    live contacts, ``clock`` dates the merge.
    """

    def __init__(
        self,
        *,
        contacts: Collection,
        timeline: Collection,
        cases: Collection,
        views: ContactViews,
        suggestions: MergeSuggestions,
        clock: Clock,
    ) -> None:
        self.contacts = contacts
        self.timeline = timeline
        self.cases = cases
        self.views = views
        self.suggestions = suggestions
        self.clock = clock

    async def claim(self, contact: dict[str, Any], write: CrmWrite) -> dict[str, Any]:
        """Link, merge or suggest merging each identity ``write`` claims for ``contact``; the
        contact after that."""
        for identity in write.strong_identities:
            contact = await self._attach(contact, identity, merge_holder=True)
        for identity in write.typed_identities:
            holder = await self._attach(contact, identity, merge_holder=False)
            await self._suggest(contact, holder, identity, write)
            contact = await self.views.live(contact["_id"])
        for identity in write.suggested_identities:
            other = await self.contacts.find_one({"identities.key": identity["key"]})
            if other is not None:
                await self._suggest(contact, other, identity, write)
        return contact

    async def _suggest(
        self,
        contact: dict[str, Any],
        holder: dict[str, Any],
        identity: dict[str, Any],
        write: CrmWrite,
    ) -> None:
        """A merge suggestion when ``holder``, not ``contact``, holds the claimed identity."""
        if holder["_id"] != contact["_id"]:
            await self.suggestions.suggest(
                contact_id=contact["_id"],
                other_contact_id=holder["_id"],
                identity_key=identity["key"],
                event_id=write.timeline_entry["event_id"],
                occurred_at=write.occurred_at,
            )

    async def _attach(
        self, contact: dict[str, Any], identity: dict[str, Any], *, merge_holder: bool
    ) -> dict[str, Any]:
        """Give ``contact`` a strong identity nobody holds; the contact after that.

        When another contact holds it: with ``merge_holder`` the two are merged (the
        contact after the merge), without it that holder is returned, unchanged. A contact
        already holding ``MAX_IDENTITIES_PER_CONTACT`` identities takes no more: the link is
        skipped, the record still recorded.
        """
        if any(held["key"] == identity["key"] for held in contact["identities"]):
            return contact
        holder = await self.contacts.find_one({"identities.key": identity["key"]})
        if holder is not None and not merge_holder:
            return holder
        if holder is not None:
            try:
                return await self.merge_older(contact["_id"], holder["_id"])
            except TooManyIdentities:
                log.warning(
                    "merge skipped: too many identities", extra={"contact_id": contact["_id"]}
                )
                return contact
        if not identities_fit(len(contact["identities"]), 1):
            log.warning("link skipped: too many identities", extra={"contact_id": contact["_id"]})
            return contact
        try:
            await self.contacts.update_one(
                {"_id": contact["_id"]}, {"$addToSet": {"identities": identity}}
            )
        except DuplicateKeyError:
            # Another consumer attached it meanwhile: decide again against that holder.
            return await self._attach(contact, identity, merge_holder=merge_holder)
        return await self.views.live(contact["_id"])

    async def merge_older(self, contact_id: str, other_contact_id: str) -> dict[str, Any]:
        """Merge two contacts, the older surviving: the same id whatever order messages come."""
        pair = [await self.views.live(contact_id), await self.views.live(other_contact_id)]
        winner, loser = sorted(pair, key=lambda c: (c["created_at"], c["_id"]))
        return await self.merge(winner["_id"], loser["_id"])

    async def accept_suggestion(self, suggestion_id: str, *, actor: str) -> dict[str, Any]:
        """An agent confirms a suggested merge: the two contacts become one (older survives)."""
        suggestion = await self.suggestions.claim(suggestion_id, status="accepted", actor=actor)
        try:
            merged = await self.merge_older(
                suggestion["contact_id"], suggestion["other_contact_id"]
            )
        except (TooManyIdentities, ContactNotFound):
            await self.suggestions.reopen(suggestion_id)
            raise
        log.info(
            "merge suggestion accepted",
            extra={"suggestion_id": suggestion_id, "contact_id": merged["_id"]},
        )
        return merged

    async def link(self, contact_id: str, identity: dict[str, Any]) -> dict[str, Any]:
        """Manual link of an identity; refused when another contact holds it (merge instead)."""
        contact = await self.views.live(contact_id)
        holder = await self.contacts.find_one({"identities.key": identity["key"]})
        if holder is not None and holder["_id"] != contact["_id"]:
            raise IdentityTaken(identity["key"], holder["_id"])
        if holder is None and not identities_fit(len(contact["identities"]), 1):
            raise TooManyIdentities(contact["_id"])
        try:
            await self.contacts.update_one(
                {"_id": contact["_id"]}, {"$addToSet": {"identities": identity}}
            )
        except DuplicateKeyError as error:
            raise IdentityTaken(identity["key"], "") from error
        return await self.views.live(contact["_id"])

    async def merge(self, winner_id: str, loser_id: str) -> dict[str, Any]:
        """Fold ``loser`` into ``winner``: identities and history move, loser becomes a redirect."""
        winner = await self.views.live(winner_id)
        loser = await self.views.live(loser_id)
        if winner["_id"] == loser["_id"]:
            return winner
        moved = [i for i in loser["identities"] if not i["key"].startswith("merged:")]
        if not identities_fit(len(winner["identities"]), len(moved)):
            raise TooManyIdentities(winner["_id"])
        # Identity keys are unique across contacts: free them on the loser before the winner
        # takes them. The placeholder keeps the loser in the unique index with a key of its own.
        await self.contacts.update_one(
            {"_id": loser["_id"]},
            {
                "$set": {
                    "merged_into": winner["_id"],
                    "merged_at": self.clock(),
                    "merged_identities": moved,
                    "identities": [{"key": f"merged:{loser['_id']}"}],
                }
            },
        )
        for identity in moved:
            await self.contacts.update_one(
                {"_id": winner["_id"]}, {"$addToSet": {"identities": identity}}
            )
        await self.timeline.update_many(
            {"contact_id": loser["_id"]}, {"$set": {"contact_id": winner["_id"]}}
        )
        await self.cases.update_many(
            {"contact_id": loser["_id"]}, {"$set": {"contact_id": winner["_id"]}}
        )
        log.info("contacts merged", extra={"winner": winner["_id"], "loser": loser["_id"]})
        return await self.views.live(winner["_id"])
