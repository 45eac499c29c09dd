"""``CrmStore.record_many`` (the sink's bulk path) leaves the store as ``record`` one by one
does, against the real MongoDB-protocol server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from socialcrm.v1 import routed_pb2
from socialcrm_crm_sink.records import plan_write
from socialcrm_crm_sink.store import CrmStore
from socialcrm_crm_sink.writes import Recorded
from socialcrm_devstack.stack import LOCAL_FINGERPRINT_SECRET
from tests.conftest import Infra
from tests.integration.test_crm_sink_identity import chat, email, x_dm, x_post

pytestmark = pytest.mark.integration

# Written at the time of the write: not part of what the two paths must agree on.
_CLOCK_FIELDS = ("recorded_at", "merged_at", "erased_at")


@pytest.fixture
async def stores(infra: Infra) -> AsyncIterator[tuple[CrmStore, CrmStore]]:
    """Two empty stores: one fed in bulk, one record by record."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo.uri, tz_aware=True)
    pair = []
    for _ in range(2):
        store = CrmStore(
            client[f"crm_{uuid.uuid4().hex[:8]}"], fingerprint_secret=LOCAL_FINGERPRINT_SECRET
        )
        await store.migrate()
        pair.append(store)
    yield pair[0], pair[1]
    for store in pair:
        await client.drop_database(store.db.name)
    await client.close()


async def contents(store: CrmStore) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for name in ("contacts", "timeline", "cases"):
        documents = await store.db[name].find().sort("_id").to_list()
        for document in documents:
            for field in _CLOCK_FIELDS:
                document.pop(field, None)
            for entry in document.get("history", []):
                entry.pop("at", None)
            if "interaction_event_ids" in document:
                document["interaction_event_ids"].sort()
            # Anonymised documents take random ids at erasure: equal up to those.
            if document.get("ids") == "random":
                document["_id"] = "anonymised"
                document["case_id"] = "anonymised" if document.get("case_id") else None
        found[name] = sorted(documents, key=str)
    return found


async def one_by_one(
    store: CrmStore, events: Sequence[routed_pb2.RoutedInteraction]
) -> list[Recorded | None]:
    return [await store.record(plan_write(e)) for e in events]


async def in_bulk(
    store: CrmStore, events: Sequence[routed_pb2.RoutedInteraction]
) -> list[Recorded | None]:
    return await store.record_many([plan_write(e) for e in events])


def mixed_batch() -> list[routed_pb2.RoutedInteraction]:
    """Several authors, a thread, a person linking their email, and redeliveries."""
    return [
        x_post("700", "nina", 0),
        x_post("701", "omar", 1),
        x_post("700", "nina", 0),
        x_dm("702", "nina", "écrivez-moi : Nina@Example.com", 2),
        email("m70", "nina@example.com", "Toujours rien reçu", 3),
        chat("m71", "omar@example.com", 4),
        x_post("703", "omar", 5),
        x_dm("702", "nina", "écrivez-moi : Nina@Example.com", 2),
        # The gateway did not verify this sender: a merge suggestion, no link.
        email("m72", "nina@example.com", "autre adresse : zed@example.net", 6, verified=False),
    ]


async def test_a_mixed_batch_ends_as_record_by_record(stores: tuple[CrmStore, CrmStore]) -> None:
    bulk, reference = stores
    events = mixed_batch()
    assert await in_bulk(bulk, events) == await one_by_one(reference, events)
    assert await contents(bulk) == await contents(reference)
    [nina] = await bulk.db.contacts.find({"identities.key": "x:nina"}).to_list()
    assert {i["key"] for i in nina["identities"]} == {"x:nina", "email:nina@example.com"}
    assert await bulk.db.timeline.count_documents({}) == 7
    [suggestion] = await bulk.suggestions.listed(status="pending", limit=10)
    assert suggestion["identity_keys"] == ["email:nina@example.com"]
    assert await bulk.db.contacts.count_documents({"identities.key": "email:zed@example.net"}) == 0


async def test_a_redelivered_batch_changes_nothing(stores: tuple[CrmStore, CrmStore]) -> None:
    bulk, _ = stores
    events = mixed_batch()
    first = await in_bulk(bulk, events)
    before = await contents(bulk)
    assert await in_bulk(bulk, events) == first
    assert await contents(bulk) == before


async def test_concurrent_batches_never_duplicate(stores: tuple[CrmStore, CrmStore]) -> None:
    bulk, _ = stores
    events = [x_post(str(710 + i), "same_author", i) for i in range(6)]
    # Overlapping batches at once, as competing consumers after a rebalance would send them.
    await asyncio.gather(*(in_bulk(bulk, events[i : i + 4]) for i in range(3)))
    assert await bulk.db.contacts.count_documents({}) == 1
    assert await bulk.db.timeline.count_documents({}) == 6
    assert await bulk.db.cases.count_documents({}) == 6


async def test_a_replay_of_an_erased_person_stays_erased(
    stores: tuple[CrmStore, CrmStore],
) -> None:
    bulk, reference = stores
    old = [x_post("720", "zoe", 0), x_post("721", "zoe", 1)]
    for store in stores:
        recorded = await in_bulk(store, old)
        assert recorded[0] is not None
        await store.erase(await store.plan_erasure(recorded[0].contact_id))
    later = x_post("722", "zoe", 10**6)
    replay = [*old, later, x_post("723", "yann", 2)]
    results = await in_bulk(bulk, replay)
    assert results == await one_by_one(reference, replay)
    assert results[:2] == [None, None]
    assert results[2] is not None
    assert results[2].contact_created_by == later.header.event_id
    assert await contents(bulk) == await contents(reference)
