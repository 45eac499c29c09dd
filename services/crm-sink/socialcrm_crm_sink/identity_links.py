"""Identity links and merges of contacts (MongoDB adapter).

Keys vouched for by a channel link, and merge their holder, automatically; keys merely
typed in a message link only when nobody holds them, else a merge suggestion waits for an
agent; admins link and merge by hand. A merged contact becomes a redirect to the survivor.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from socialcrm_crm_sink.errors import ContactNotFound, IdentityTaken, TooManyIdentities
from socialcrm_crm_sink.limits import identities_fit
from socialcrm_crm_sink.suggestions import MergeSuggestions
from socialcrm_crm_sink.views import ContactViews

log = logging.getLogger(__name__)


class IdentityLinks(ContactViews):
    """Links an identity to a contact, merges two contacts, decides merge suggestions."""

    suggestions: MergeSuggestions

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
        holder = await self.db.contacts.find_one({"identities.key": identity["key"]})
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
            await self.db.contacts.update_one(
                {"_id": contact["_id"]}, {"$addToSet": {"identities": identity}}
            )
        except DuplicateKeyError:
            # Another consumer attached it meanwhile: decide again against that holder.
            return await self._attach(contact, identity, merge_holder=merge_holder)
        return await self._live(contact["_id"])

    async def merge_older(self, contact_id: str, other_contact_id: str) -> dict[str, Any]:
        """Merge two contacts, the older surviving: the same id whatever order messages come."""
        pair = [await self._live(contact_id), await self._live(other_contact_id)]
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
        contact = await self._live(contact_id)
        holder = await self.db.contacts.find_one({"identities.key": identity["key"]})
        if holder is not None and holder["_id"] != contact["_id"]:
            raise IdentityTaken(identity["key"], holder["_id"])
        if holder is None and not identities_fit(len(contact["identities"]), 1):
            raise TooManyIdentities(contact["_id"])
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
        if not identities_fit(len(winner["identities"]), len(moved)):
            raise TooManyIdentities(winner["_id"])
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
