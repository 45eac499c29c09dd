"""The database commands of the sink's bulk path: no write that changes nothing, one case
upsert per case per batch, against the real MongoDB-protocol server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from socialcrm.v1 import routed_pb2
from socialcrm_crm_sink.records import plan_write
from socialcrm_crm_sink.store import CrmStore
from socialcrm_devstack.stack import LOCAL_FINGERPRINT_SECRET
from tests.conftest import Infra
from tests.integration.test_crm_sink_identity import x_post

pytestmark = pytest.mark.integration


class Commands(CommandListener):
    """The commands a client sent, by name and collection."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def started(self, event: CommandStartedEvent) -> None:
        collection = event.command.get(event.command_name)
        self.sent.append((event.command_name, str(collection), dict(event.command)))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        return None

    def failed(self, event: CommandFailedEvent) -> None:
        return None

    def statements(self, name: str, collection: str) -> list[dict[str, Any]]:
        """The update statements (or inserted documents) sent to ``collection``."""
        field = {"update": "updates", "insert": "documents"}[name]
        return [
            s for n, c, command in self.sent if (n, c) == (name, collection) for s in command[field]
        ]


@pytest.fixture
async def watched(infra: Infra) -> AsyncIterator[tuple[CrmStore, Commands]]:
    commands = Commands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        infra.mongo.uri, tz_aware=True, event_listeners=[commands]
    )
    store = CrmStore(
        client[f"crm_{uuid.uuid4().hex[:8]}"], fingerprint_secret=LOCAL_FINGERPRINT_SECRET
    )
    await store.migrate()
    commands.sent.clear()
    yield store, commands
    await client.drop_database(store.db.name)
    await client.close()


def in_thread(tweet_id: str, handle: str, minute: int, thread: str) -> routed_pb2.RoutedInteraction:
    """A post of ``thread`` that needs an answer: its case is the thread's."""
    routed = x_post(tweet_id, handle, minute)
    routed.enriched.interaction.conversation_id = thread
    routed.routing.needs_response = True
    return routed


async def test_events_of_known_contacts_write_no_contact(
    watched: tuple[CrmStore, Commands],
) -> None:
    store, commands = watched
    await store.record_many(
        [plan_write(x_post("810", "lea", 0)), plan_write(x_post("811", "max", 1))]
    )
    commands.sent.clear()

    await store.record_many(
        [plan_write(x_post("812", "lea", 2)), plan_write(x_post("813", "max", 3))]
    )

    assert commands.statements("update", "contacts") == []
    assert len(commands.statements("insert", "timeline")) == 2


async def test_a_case_is_upserted_once_per_batch_whatever_it_takes(
    watched: tuple[CrmStore, Commands],
) -> None:
    store, commands = watched
    thread = f"thread-{uuid.uuid4().hex[:8]}"
    batch = [in_thread(str(820 + i), "zoe", i, thread) for i in range(4)]

    recorded = await store.record_many([plan_write(e) for e in batch])

    [upsert] = commands.statements("update", "cases")
    assert upsert["upsert"] is True
    [case] = await store.db.cases.find().to_list()
    assert {r.case_id for r in recorded if r} == {case["_id"]}
    assert sorted(case["interaction_event_ids"]) == sorted(
        e.enriched.interaction.header.event_id for e in batch
    )
    assert case["opened_by_event_id"] == batch[0].enriched.interaction.header.event_id
    assert case["last_activity_at"] == batch[-1].enriched.interaction.header.occurred_at.ToDatetime(
        tzinfo=case["last_activity_at"].tzinfo
    )
