"""The CRM store against the real MongoDB-protocol server: idempotent and concurrency-safe;
an erased person's records final."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from socialcrm.v1 import common_pb2, routed_pb2
from socialcrm_crm_sink.errors import CaseErased
from socialcrm_crm_sink.records import plan_reply, plan_write
from socialcrm_crm_sink.store import CrmStore
from socialcrm_devstack.stack import LOCAL_FINGERPRINT_SECRET
from tests.conftest import Infra
from tests.fixtures import events
from tests.integration.test_crm_sink_identity import record

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(infra: Infra) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo.uri, tz_aware=True)
    db = client[f"crm_{uuid.uuid4().hex[:8]}"]
    yield db
    await client.drop_database(db.name)
    await client.close()


def routed_tweet(
    tweet_id: str, handle: str, in_reply_to: str | None = None
) -> routed_pb2.RoutedInteraction:
    """A routed public X post by ``handle``, in the thread of ``in_reply_to`` if given."""
    post = events.interaction(
        tweet_id,
        author=common_pb2.Author(handle=handle),
        conversation_id=in_reply_to,
        is_public=True,
    )
    return events.routed(events.enriched(post))


async def test_redelivered_event_changes_nothing(database: AsyncDatabase[dict[str, Any]]) -> None:
    store = CrmStore(database, fingerprint_secret=LOCAL_FINGERPRINT_SECRET)
    await store.migrate()
    routed = routed_tweet("100", "paul")
    first = await record(store, routed)
    snapshot = {
        name: await database[name].find().to_list() for name in ("contacts", "timeline", "cases")
    }
    again = await record(store, routed)
    assert again == first
    for name, documents in snapshot.items():
        assert await database[name].find().to_list() == documents
    assert first.contact_created_by == routed.header.event_id
    assert first.case_opened_by == routed.header.event_id


async def test_a_thread_is_one_case_and_one_contact_per_author(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    store = CrmStore(database, fingerprint_secret=LOCAL_FINGERPRINT_SECRET)
    await store.migrate()
    opened = await record(store, routed_tweet("200", "lea"))
    followed = await record(store, routed_tweet("201", "LEA", in_reply_to="200"))
    assert followed.contact_id == opened.contact_id
    assert followed.case_id == opened.case_id
    assert followed.case_opened_by != routed_tweet("201", "lea", "200").header.event_id
    case = await database.cases.find_one({"_id": opened.case_id})
    assert case is not None
    assert len(case["interaction_event_ids"]) == 2
    assert await database.timeline.count_documents({"contact_id": opened.contact_id}) == 2


async def test_concurrent_consumers_never_duplicate(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    store = CrmStore(database, fingerprint_secret=LOCAL_FINGERPRINT_SECRET)
    await store.migrate()
    events = [routed_tweet(str(300 + i), "same_author") for i in range(5)]
    # Each event delivered three times, all at once, as competing consumers after a rebalance would.
    await asyncio.gather(*(store.record(plan_write(e)) for e in events * 3))
    assert await database.contacts.count_documents({}) == 1
    assert await database.timeline.count_documents({}) == 5
    assert await database.cases.count_documents({}) == 5


async def test_migration_is_idempotent_and_stamps_the_schema(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    store = CrmStore(database, fingerprint_secret=LOCAL_FINGERPRINT_SECRET)
    await store.migrate()
    await store.migrate()
    meta = await database.meta.find_one({"_id": "schema"})
    assert meta is not None
    assert meta["version"] >= 1
    indexes = await database.contacts.index_information()
    assert indexes["identity_unique"]["unique"]


async def test_an_erased_persons_records_move_to_random_ids_and_take_no_change(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """Issue 25, finding 7 and the anonymised ids derived from public ids."""
    store = CrmStore(database, fingerprint_secret=LOCAL_FINGERPRINT_SECRET)
    await store.migrate()
    routed = routed_tweet("300", "lise")
    recorded = await record(store, routed)
    assert recorded.case_id is not None
    event_id = routed.header.event_id
    plan = await store.plan_erasure(recorded.contact_id)
    await store.erase(plan)
    await store.erase(plan)  # a retried erasure moves nothing twice
    assert await database.timeline.find_one({"_id": f"{event_id}:interaction"}) is None
    assert await database.cases.find_one({"_id": recorded.case_id}) is None
    [entry] = await database.timeline.find().to_list()
    [case] = await database.cases.find().to_list()
    derived = {event_id, recorded.case_id, routed.header.external_id, recorded.contact_id}
    assert not derived & {str(v) for d in (entry, case) for v in d.values()}
    assert entry["case_id"] == case["_id"]
    assert (entry["language"], entry["queue"], case["queue"]) == (
        "fr",
        routed.routing.queue,
        routed.routing.queue,
    )
    with pytest.raises(CaseErased):
        await store.update_case(case["_id"], status=None, assignee=None, note="x", actor="a")
    assert (await database.cases.find_one({"_id": case["_id"]}) or {})["history"] == []
    # An agent's reply still in flight is dropped, not retried for minutes.
    dropped = await store.record_reply(plan_reply(events.reply(routed)))
    assert dropped is not None
    assert dropped.contact_id == ""


async def test_schema_3_moves_older_anonymised_records_to_random_ids(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    erased_at = datetime(2026, 1, 1, tzinfo=UTC)
    await database.timeline.insert_one(
        {
            "_id": "e-1:interaction",
            "event_id": "e-1",
            "case_id": "case-1",
            "contact_id": None,
            "erased_at": erased_at,
            "language": "fr",
            "text": "",
        }
    )
    await database.cases.insert_one(
        {"_id": "case-1", "contact_id": None, "erased_at": erased_at, "status": "new"}
    )
    await database.meta.insert_one({"_id": "schema", "version": 2})
    await CrmStore(database, fingerprint_secret=LOCAL_FINGERPRINT_SECRET).migrate()
    [entry] = await database.timeline.find().to_list()
    [case] = await database.cases.find().to_list()
    assert entry["_id"] != "e-1:interaction"
    assert entry["event_id"] == ""
    assert entry["case_id"] == case["_id"] != "case-1"
    assert (entry["language"], case["status"]) == ("fr", "new")


async def test_the_stores_clock_dates_what_its_parts_write(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """Every part of the store is given the store's clock: a fixed one dates every write."""
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    store = CrmStore(database, fingerprint_secret=LOCAL_FINGERPRINT_SECRET, clock=lambda: now)
    await store.migrate()
    first = await record(store, routed_tweet("400", "anna"))
    second = await record(store, routed_tweet("401", "anna_2"))
    assert first.case_id is not None
    case = await store.update_case(
        first.case_id, status=None, assignee="agent-1", note=None, actor="agent-1"
    )
    merged = await store.merge(first.contact_id, second.contact_id)
    loser = await database.contacts.find_one({"_id": second.contact_id}) or {}
    recorded_at = {e["recorded_at"] for e in await database.timeline.find().to_list()}
    assert (case["history"][-1]["at"], loser["merged_at"], recorded_at) == (now, now, {now})
    await store.erase(await store.plan_erasure(merged["_id"]))
    erased_at = {e["erased_at"] for e in await database.erasures.find().to_list()}
    assert erased_at == {now}
