"""The baselines measured on the same broker in the same run: raw aiokafka produce and
consume of contract messages (the ceiling), and the plain consume->produce loop."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata

from socialcrm import contract
from socialcrm.kafka import connection
from socialcrm_bench.processes import self_cpu_seconds
from socialcrm_bench.topics import bench_settings, create_topic, partitions_of
from socialcrm_devstack.demo_stream import DemoStream
from socialcrm_ingest.formats.x_account_activity import normalize_account_activity

CEILING_TOPIC = "bench.ceiling"
CEILING_PARTITIONS = 6
RAW_LOOP_MAX_RECORDS = 1000


@dataclass
class Ceiling:
    messages: int = 0
    bytes_total: int = 0
    produce_seconds: float = 0.0
    consumed: int = 0
    join_seconds: float = 0.0
    consume_seconds: float = 0.0

    @property
    def produced_per_s(self) -> float:
        return self.messages / self.produce_seconds if self.produce_seconds else 0.0

    @property
    def consumed_per_s(self) -> float:
        return self.consumed / self.consume_seconds if self.consume_seconds else 0.0


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

    @property
    def busy(self) -> float:
        """The share of a core used over the run."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0


def sample_interactions(count: int, seed: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``count`` encoded Interactions normalised from DemoStream tweets."""
    stream = DemoStream(seed=seed)
    records = []
    for _ in range(count):
        [interaction] = normalize_account_activity(
            stream.tweet_event(), brand="acme", ingested_at=datetime.now(UTC)
        )
        records.append((contract.key_of(interaction), contract.encode(interaction)))
    return records


def bench_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    """A producer with the services' settings: acks=all, idempotent, 5 ms linger."""
    return connection.producer(bench_settings(bootstrap, client_id))


async def measure_ceiling(bootstrap: str, messages: int, seed: int) -> Ceiling:
    await create_topic(bootstrap, CEILING_TOPIC, CEILING_PARTITIONS)
    records = sample_interactions(2000, seed)
    result = Ceiling(messages=messages)
    producer = bench_producer(bootstrap, "bench-ceiling")
    await producer.start()
    try:
        # Warm-up outside the timing: metadata, connections, producer id.
        await (await producer.send(CEILING_TOPIC, records[0][1], key=records[0][0]))
        started = time.perf_counter()
        pending: list[asyncio.Future[Any]] = []
        for index in range(messages):
            key, value = records[index % len(records)]
            result.bytes_total += len(value)
            pending.append(await producer.send(CEILING_TOPIC, value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        result.produce_seconds = time.perf_counter() - started
    finally:
        await producer.stop()

    expected = messages + 1  # with the warm-up record
    consumer = connection.consumer(
        bench_settings(bootstrap, "bench-ceiling"),
        CEILING_TOPIC,
        group_id=f"bench-ceiling-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    joined = time.perf_counter()
    await consumer.start()
    try:
        first: float | None = None
        deadline = time.monotonic() + 120
        while result.consumed < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                if batch and first is None:
                    first = time.perf_counter()
                    result.join_seconds = first - joined
                result.consumed += len(batch)
        if first is not None:
            result.consume_seconds = time.perf_counter() - first
    finally:
        await consumer.stop()
    return result


async def raw_loop(bootstrap: str, topic: str, records: int, bound_s: float) -> Rate:
    """The plain consume->produce loop over ``topic``: getmany up to 1,000, send every
    record on, gather the acks, commit; measured from its first fetch (this process's CPU)."""
    out_topic = f"bench.raw.{topic}"
    await create_topic(bootstrap, out_topic, len(await partitions_of(bootstrap, topic)))
    consumer = connection.consumer(
        bench_settings(bootstrap, "bench-raw"),
        topic,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=RAW_LOOP_MAX_RECORDS,
    )
    producer = bench_producer(bootstrap, "bench-raw")
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
