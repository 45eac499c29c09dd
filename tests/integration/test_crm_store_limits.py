"""Bounded case history and identities per contact, against the real MongoDB-protocol server."""

from __future__ import annotations

import pytest

from socialcrm_crm_sink.errors import TooManyIdentities
from socialcrm_crm_sink.limits import MAX_HISTORY_ENTRIES, MAX_IDENTITIES_PER_CONTACT
from socialcrm_crm_sink.store import CrmStore
from tests.integration.test_crm_sink_identity import record, store, x_dm, x_post

pytestmark = pytest.mark.integration

__all__ = ["store"]


async def fill_identities(store: CrmStore, contact_id: str) -> None:
    """Give the contact as many identities as it may hold."""
    contact = await store.db.contacts.find_one({"_id": contact_id})
    assert contact is not None
    missing = MAX_IDENTITIES_PER_CONTACT - len(contact["identities"])
    extra = [
        {"key": f"customer_number:{contact_id[:8]}{n}", "channel": "customer_number"}
        for n in range(missing)
    ]
    await store.db.contacts.update_one(
        {"_id": contact_id}, {"$push": {"identities": {"$each": extra}}}
    )


async def test_a_case_keeps_its_newest_history_entries(store: CrmStore) -> None:
    recorded = await record(store, x_post("960", "bavard", 0))
    assert recorded.case_id is not None
    for i in range(MAX_HISTORY_ENTRIES + 3):
        case = await store.update_case(
            recorded.case_id, status=None, assignee="agent-1", note=f"n{i}", actor="agent-1"
        )
    assert len(case["history"]) == MAX_HISTORY_ENTRIES
    assert case["history_dropped"] == 3
    assert case["history"][0]["note"] == "n3"
    assert case["history"][-1]["note"] == f"n{MAX_HISTORY_ENTRIES + 2}"


async def test_a_full_contact_skips_further_links_without_failing(store: CrmStore) -> None:
    full = await record(store, x_post("970", "collector", 0))
    await fill_identities(store, full.contact_id)
    linked = await record(store, x_dm("971", "collector", "mon email : c@example.com", 1))
    assert linked.contact_id == full.contact_id
    contact = await store.db.contacts.find_one({"_id": full.contact_id})
    assert contact is not None
    assert len(contact["identities"]) == MAX_IDENTITIES_PER_CONTACT
    assert "email:c@example.com" not in {i["key"] for i in contact["identities"]}
    with pytest.raises(TooManyIdentities):
        await store.link(full.contact_id, {"key": "phone:+33600000000", "channel": "phone"})
    other = await record(store, x_post("972", "other_one", 2))
    with pytest.raises(TooManyIdentities):
        await store.merge(full.contact_id, other.contact_id)
