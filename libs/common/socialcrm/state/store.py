"""A key-value store per owned partition, written through to its compacted changelog.

Single writer: only the replica that owns input partition N reads and writes the state
of partition N, from the stream processor's own task (its handlers and punctuations).
Writes change the map at once and are buffered until ``flush``, which the processor calls
before committing the batch's offsets: the changelog then holds everything the
committed records did, and a key written several times in a batch is sent once.

On assignment a partition is restored from its changelog. A partition revoked by a
rebalance is kept aside until the next assignment: when it comes back (most rebalances
give a replica its partitions again), only the changelog records written since are read.
``assign`` makes the partitions owned exactly those given: one held but not given (a
restore that raced a revocation) is dropped as lost, so that it is restored in full when
it comes back. A failed restore leaves the partitions it was restoring unowned, their
copies kept aside dropped: the next attempt reads them from the beginning.

A store given a ``writer`` (the stream processor's ``writer``: its group generation and
member id) fences its writes (``socialcrm.state.fencing``): a fence marker when it takes a
partition over, each record stamped, and a restore applies only records whose stamp is at
least the highest one read before them. A former owner's late writes then never enter
the state of the partition's successor nor any later restore; ``accept`` only decides
between unstamped records (written before fencing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, ItemsView, Iterable
from typing import Generic, TypeVar

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.structs import RecordMetadata

from socialcrm.kafka.connection import partitions_of
from socialcrm.kafka.producer import EventProducer
from socialcrm.settings import ServiceSettings
from socialcrm.state import metrics
from socialcrm.state.changelog import changelog_consumer, ensure_changelog_topic, read_to_end
from socialcrm.state.codec import Codec, keep_latest
from socialcrm.state.fencing import (
    FENCE_KEY,
    UNSTAMPED,
    Fences,
    FencingError,
    Stamp,
    Writer,
    WriterSource,
    headers_of,
    stamp_of,
)

log = logging.getLogger(__name__)

V = TypeVar("V")


class PartitionedStore(Generic[V]):
    """State of the partitions of ``input_topic`` (and of the topics co-partitioned with
    it) that this replica owns, durable in the changelog ``topic``. A store of state that
    no input partitions (a poller's cursors) gives its ``partitions`` count instead.

    ``accept(held, new)`` says whether a changelog record read back replaces the value
    held (e.g. only strictly newer revisions); ``on_restored(partition, items)`` lets the
    service rebuild its indexes (timers) after a partition was restored."""

    def __init__(
        self,
        *,
        name: str,
        settings: ServiceSettings,
        producer: EventProducer,
        topic: str,
        input_topic: str | None,
        codec: Codec[V],
        partitions: int | None = None,
        accept: Callable[[V | None, V], bool] = keep_latest,
        on_restored: Callable[[int, ItemsView[str, V]], None] | None = None,
        writer: WriterSource | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.producer = producer
        self.topic = topic
        self.input_topic = input_topic
        self.partitions = partitions
        self.codec = codec
        self.accept = accept
        self.on_restored = on_restored
        self.writer = writer
        self._data: dict[int, dict[str, V]] = {}
        self._suspended: dict[int, dict[str, V]] = {}
        # Next changelog offset this replica has seen, per partition held or suspended.
        self._positions: dict[int, int] = {}
        self._pending: dict[tuple[int, str], V | None] = {}
        # Fenced stores: the highest stamp read per partition, and the stamp of this
        # replica's writes per owned partition (its fence marker's).
        self._fences = Fences()
        self._stamps: dict[int, Stamp] = {}
        self._keys = metrics.KEYS.labels(name)
        self._owned = metrics.OWNED_PARTITIONS.labels(name)
        self._writes = metrics.CHANGELOG_WRITES.labels(name)

    async def start(self) -> None:
        """Make sure the changelog exists, with as many partitions as the input topic."""
        partitions = self.partitions
        if partitions is None:
            if self.input_topic is None:
                raise ValueError(f"{self.name}: neither an input topic nor a partition count")
            partitions = await partitions_of(self.settings, self.input_topic)
        await ensure_changelog_topic(self.settings, self.topic, partitions)

    async def stop(self) -> None:
        return None

    async def check(self) -> None:
        return None

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._data)

    def get(self, partition: int, key: str) -> V | None:
        return self._data[partition].get(key)

    def items(self, partition: int) -> ItemsView[str, V]:
        return self._data[partition].items()

    def key_count(self) -> int:
        return sum(len(data) for data in self._data.values())

    def put(self, partition: int, key: str, value: V | None) -> None:
        """Set (``None``: delete) ``key`` in an owned partition; durable at the next flush."""
        data = self._data[partition]
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
        self._pending[(partition, key)] = value

    async def flush(self) -> None:
        """Send the writes buffered since the last flush and wait for their acknowledgement.
        A fenced store refuses (``FencingError``) once its writer lost its membership."""
        if not self._pending:
            return
        writer = self._current_writer()
        pending, self._pending = self._pending, {}
        futures: list[tuple[int, asyncio.Future[RecordMetadata]]] = []
        try:
            for (partition, key), value in pending.items():
                encoded = None if value is None else self.codec.encode(value)
                future = await self.producer.send_record(
                    self.topic,
                    encoded,
                    key=key.encode(),
                    partition=partition,
                    headers=self._headers(partition, writer),
                )
                futures.append((partition, future))
            written: dict[int, list[int]] = {}
            for partition, future in futures:
                written.setdefault(partition, []).append((await future).offset)
        except BaseException:
            # Not acknowledged: send them again with the next flush, unless newer writes
            # of the same keys came meanwhile.
            self._pending = {**pending, **self._pending}
            raise
        for partition, offsets in written.items():
            self._advance(partition, sorted(offsets))
        self._writes.inc(len(futures))
        self._keys.set(self.key_count())

    def _current_writer(self) -> Writer | None:
        if self.writer is None:
            return None
        writer = self.writer()
        if writer.generation < 0:
            raise FencingError(f"{self.name}: no group membership, state writes refused")
        return writer

    def _headers(self, partition: int, writer: Writer | None) -> list[tuple[str, bytes]] | None:
        if writer is None:
            return None
        return headers_of(self._stamps.get(partition, UNSTAMPED), writer)

    def _advance(self, partition: int, offsets: list[int]) -> None:
        """Move the position kept for a partition given back past this replica's writes.
        A fenced store moves it only over an unbroken run of its own records: a record
        of another writer in between must be read when the partition comes back."""
        position = self._positions.get(partition, 0)
        if self.writer is None:
            if offsets[-1] >= position:
                self._positions[partition] = offsets[-1] + 1
        elif offsets == list(range(position, position + len(offsets))):
            self._positions[partition] = position + len(offsets)

    async def assign(self, partitions: Iterable[int]) -> None:
        """Own exactly ``partitions``: restore each one not held from its changelog (from
        where this replica left it when it held it until the last revocation, else from
        the beginning); one held but not given is dropped as lost."""
        wanted = set(partitions)
        if stale := set(self._data) - wanted:
            log.warning(
                "state held for partitions not assigned: dropped",
                extra={"store": self.name, "partitions": sorted(stale)},
            )
            self.lose(stale)
        # What was revoked and not given back belongs to another replica now.
        self.lose(set(self._suspended) - wanted)
        to_restore = wanted - set(self._data)
        if not to_restore:
            return
        started = time.monotonic()
        try:
            restored, records = await self._restore(to_restore)
        except BaseException:
            self.lose(to_restore)  # a copy kept aside may hold part of a failed read
            raise
        for partition, data in restored.items():
            self._data[partition] = data
            if self.on_restored is not None:
                self.on_restored(partition, data.items())
        seconds = time.monotonic() - started
        metrics.RESTORE_SECONDS.labels(self.name).set(seconds)
        metrics.RESTORED_RECORDS.labels(self.name).inc(records)
        self._keys.set(self.key_count())
        self._owned.set(len(self._data))
        log.info(
            "state restored",
            extra={
                "store": self.name,
                "partitions": sorted(to_restore),
                "records": records,
                "keys": sum(len(restored[p]) for p in to_restore),
                "seconds": round(seconds, 3),
            },
        )

    async def _restore(self, to_restore: set[int]) -> tuple[dict[int, dict[str, V]], int]:
        """Read ``to_restore`` to the end of the changelog; a fenced store then writes its
        fence markers and reads on past them. The data restored, and the records read."""
        writer = self._current_writer()
        restored: dict[int, dict[str, V]] = {}
        starts: dict[TopicPartition, int | None] = {}
        for partition in to_restore:
            kept = self._suspended.pop(partition, None)
            restored[partition] = kept if kept is not None else {}
            if kept is None:
                self._fences.forget(partition)
            starts[TopicPartition(self.topic, partition)] = (
                self._positions.get(partition) if kept is not None else None
            )
        records = 0

        def apply(record: ConsumerRecord[bytes, bytes]) -> None:
            nonlocal records
            records += 1
            if record.key is None:
                return
            if self.writer is not None and not self._fences.admit(record.partition, record.headers):
                return  # a former owner's write after its successor's fence
            if record.key == FENCE_KEY:
                return
            data, key = restored[record.partition], record.key.decode()
            if record.value is None:
                data.pop(key, None)
                return
            value = self.codec.decode(record.value)
            stamped = stamp_of(record.headers) != UNSTAMPED
            if stamped or self.accept(data.get(key), value):
                data[key] = value

        consumer = changelog_consumer(self.settings, f"{self.name}-restore")
        await consumer.start()
        try:
            positions = await read_to_end(consumer, starts, apply)
            if writer is not None:
                await self._fence(to_restore, writer)
                positions = await read_to_end(consumer, dict(positions), apply)
        finally:
            await consumer.stop()
        for partition in to_restore:
            self._positions[partition] = positions[TopicPartition(self.topic, partition)]
        return restored, records

    async def _fence(self, partitions: set[int], writer: Writer) -> None:
        """Write a fence marker one epoch above the highest stamp read, per partition."""
        futures = []
        for partition in partitions:
            stamp = Stamp(self._fences.highest(partition).epoch + 1, writer.generation)
            self._stamps[partition] = stamp
            futures.append(
                await self.producer.send_record(
                    self.topic,
                    # Empty, not null: kept by compaction, and an empty message to any
                    # protobuf reader of the changelog.
                    b"",
                    key=FENCE_KEY,
                    partition=partition,
                    headers=headers_of(stamp, writer),
                )
            )
        await asyncio.gather(*futures)

    def lose(self, partitions: Iterable[int]) -> None:
        """Drop ``partitions`` and their unflushed writes: their next assignment restores
        them from the beginning of the changelog."""
        lost = set(partitions)
        for partition in lost:
            self._data.pop(partition, None)
            self._suspended.pop(partition, None)
            self._positions.pop(partition, None)
            self._stamps.pop(partition, None)
            self._fences.forget(partition)
        self._pending = {k: v for k, v in self._pending.items() if k[0] not in lost}
        self._keys.set(self.key_count())
        self._owned.set(len(self._data))

    def revoke(self, partitions: Iterable[int]) -> None:
        """Stop owning ``partitions`` (flushed by the caller); kept aside until the next
        assignment says whether they come back."""
        for partition in partitions:
            data = self._data.pop(partition, None)
            self._stamps.pop(partition, None)
            if data is not None:
                self._suspended[partition] = data
        self._pending = {k: v for k, v in self._pending.items() if k[0] in self._data}
        self._keys.set(self.key_count())
        self._owned.set(len(self._data))
