"""The CRM database's ceiling for bench/stages.py: the commands crm-sink's own store issues
for the routed records (captured with PyMongo's command monitoring), replayed straight with
PyMongo on an empty database."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from pymongo import AsyncMongoClient, MongoClient
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from socialcrm import contract
from socialcrm.kafka import connection
from socialcrm.v1 import routed_pb2
from socialcrm_bench.topics import bench_settings
from socialcrm_crm_sink.records import plan_write
from socialcrm_crm_sink.store import CrmStore

# The services' default CONSUMER_MAX_BATCH: the sink's fetches are replayed at that size.
SERVICE_MAX_BATCH = 500
# Commands of the store's writes and reads; session and index commands are not the load.
REPLAYED_COMMANDS = {"insert", "update", "delete", "find", "findAndModify", "aggregate", "count"}
# Fields the driver adds to a command for its own session, cluster and routing.
DRIVER_FIELDS = {"lsid", "$db", "$clusterTime", "txnNumber", "$readPreference", "readConcern"}


async def routed_batches(
    bootstrap: str, ends: dict[TopicPartition, int]
) -> list[list[routed_pb2.RoutedInteraction]]:
    """The routed interactions of the topic, in the per-partition batches a service
    fetches them in (CONSUMER_MAX_BATCH records a poll)."""
    consumer = connection.consumer(
        bench_settings(bootstrap, "bench-stages"),
        enable_auto_commit=False,
        max_poll_records=SERVICE_MAX_BATCH,
    )
    await consumer.start()
    batches: list[list[routed_pb2.RoutedInteraction]] = []
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        seen = 0
        while seen < sum(ends.values()):
            fetched = await consumer.getmany(timeout_ms=1000)
            for records in fetched.values():
                batches.append([decode_routed(r) for r in records])
                seen += len(records)
    finally:
        await consumer.stop()
    return batches


def decode_routed(record: ConsumerRecord[bytes, bytes]) -> routed_pb2.RoutedInteraction:
    return contract.decode(routed_pb2.RoutedInteraction, record.value)


class CommandCapture(CommandListener):
    """Copies of the CRUD commands a client sends, in order, without the driver's fields."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name in REPLAYED_COMMANDS:
            command = {k: v for k, v in event.command.items() if k not in DRIVER_FIELDS}
            self.commands.append(copy.deepcopy(command))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        return None

    def failed(self, event: CommandFailedEvent) -> None:
        return None


async def capture_sink_commands(
    mongo_uri: str, database: str, batches: Sequence[Sequence[routed_pb2.RoutedInteraction]]
) -> list[dict[str, Any]]:
    """The commands the sink's own store issues to record ``batches`` (into ``database``)."""
    capture = CommandCapture()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, tz_aware=True, event_listeners=[capture]
    )
    try:
        store = CrmStore(client[database], fingerprint_secret="bench-capture-secret")
        await store.migrate()
        capture.commands.clear()
        for batch in batches:
            await store.record_many([plan_write(routed) for routed in batch])
    finally:
        await client.close()
    return capture.commands


async def prepare_database(mongo_uri: str, database: str) -> None:
    """An empty database with the sink's indexes."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        await CrmStore(client[database], fingerprint_secret="bench-replay-secret").migrate()
    finally:
        await client.close()


def replay_commands(mongo_uri: str, database: str, commands: Sequence[dict[str, Any]]) -> float:
    """Seconds to send ``commands`` in order, one after the other, with PyMongo."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
    try:
        db = client[database]
        db.command("ping")
        started = time.perf_counter()
        for command in commands:
            db.command(command)
        return time.perf_counter() - started
    finally:
        client.close()
