"""What bench/stages.py measures: a stage's progress, the raw loop, the CRM database's ceiling.

Each figure of a stage is taken against a baseline measured in the same run on the same
servers: the plain aiokafka consume->produce loop on the same records, and for crm-sink
the database commands the sink's own store issues for those records, replayed straight
with PyMongo.
"""

from __future__ import annotations

import asyncio
import copy
import resource
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from pipeline import create_topic, proc_stat
from pymongo import AsyncMongoClient, MongoClient
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from socialcrm import contract
from socialcrm.v1 import routed_pb2
from socialcrm_crm_sink.records import plan_write
from socialcrm_crm_sink.store import CrmStore

RAW_LOOP_MAX_RECORDS = 1000
# The services' default CONSUMER_MAX_BATCH: the sink's fetches are replayed at that size.
SERVICE_MAX_BATCH = 500
PROGRESS_POLL_SECONDS = 0.1
# Commands of the store's writes and reads; session and index commands are not the load.
REPLAYED_COMMANDS = {"insert", "update", "delete", "find", "findAndModify", "aggregate", "count"}
# Fields the driver adds to a command for its own session, cluster and routing.
DRIVER_FIELDS = {"lsid", "$db", "$clusterTime", "txnNumber", "$readPreference", "readConcern"}


@dataclass(frozen=True)
class Rate:
    """Records handled, in how many seconds, with how many CPU seconds."""

    records: int
    seconds: float
    cpu_seconds: float

    @property
    def per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_record(self) -> float:
        return 1000 * self.cpu_seconds / self.records if self.records else 0.0


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-stages")
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    partitions = await partitions_of(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="bench-stages")
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


async def watch_group(
    bootstrap: str, group: str, ends: dict[TopicPartition, int], pid: int, bound_s: float
) -> Rate:
    """The rate of ``group`` on its input, from its first commit to the end of ``ends``.

    Committed offsets are polled: the records of the first commit and the start-up before
    it are left out, so the rate and the CPU per record (``/proc`` of ``pid``) are those
    of the steady state."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-stages")
    await admin.start()
    target = sum(ends.values())
    first: tuple[float, int, float] | None = None
    last: tuple[float, int, float] | None = None
    try:
        deadline = time.monotonic() + bound_s
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(group)
            done = sum(
                meta.offset for tp, meta in committed.items() if tp in ends and meta.offset > 0
            )
            stat = proc_stat(pid)
            if stat is None:
                raise RuntimeError(f"{group} exited during the run")
            now = time.monotonic()
            if done and first is None:
                first = (now, done, stat.cpu_seconds)
            elif first is not None and done > first[1]:
                last = (now, done, stat.cpu_seconds)
            if done >= target:
                break
            await asyncio.sleep(PROGRESS_POLL_SECONDS)
    finally:
        await admin.close()
    if first is None or last is None:
        return Rate(0, 0.0, 0.0)
    return Rate(last[1] - first[1], last[0] - first[0], last[2] - first[2])


async def raw_loop(bootstrap: str, topic: str, records: int, bound_s: float) -> Rate:
    """The plain consume->produce loop over ``topic``: getmany up to 1,000, send every
    record on, gather the acks, commit; measured from its first fetch (this process's CPU)."""
    out_topic = f"bench.raw.{topic}"
    await create_topic(bootstrap, out_topic, len(await partitions_of(bootstrap, topic)))
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        client_id="bench-raw",
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=RAW_LOOP_MAX_RECORDS,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="bench-raw",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )
    await producer.start()
    await consumer.start()
    moved = 0
    started: tuple[float, float] | None = None
    try:
        deadline = time.monotonic() + bound_s
        while moved < records and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=RAW_LOOP_MAX_RECORDS)
            if not batches:
                continue
            if started is None:
                started = (time.perf_counter(), self_cpu_seconds())
            acks = [
                await producer.send(out_topic, r.value, key=r.key, headers=list(r.headers))
                for batch in batches.values()
                for r in batch
            ]
            await asyncio.gather(*acks)
            await consumer.commit(
                {tp: OffsetAndMetadata(batch[-1].offset + 1, "") for tp, batch in batches.items()}
            )
            moved += sum(len(batch) for batch in batches.values())
    finally:
        await consumer.stop()
        await producer.stop()
    if started is None:
        return Rate(0, 0.0, 0.0)
    return Rate(moved, time.perf_counter() - started[0], self_cpu_seconds() - started[1])


async def routed_batches(
    bootstrap: str, ends: dict[TopicPartition, int]
) -> list[list[routed_pb2.RoutedInteraction]]:
    """The routed interactions of the topic, in the per-partition batches a service
    fetches them in (CONSUMER_MAX_BATCH records a poll)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="bench-stages",
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
