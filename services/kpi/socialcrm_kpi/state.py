"""Durable state of the kpi service in the compacted topic ``kpi.state.v1``.

Event sourcing with snapshots, keyed under ``<service name>/`` so that deployments
sharing a broker do not mix their states:

- ``journal/<seq>``: the engine's journal entries (the facts of the records applied,
  with their offsets) of one batch, written before the consumers commit the batch's
  offsets (the stream processors' ``before_commit``): nothing committed is missing;
- ``snapshot/<slot>/<part>``: the whole state, every ``snapshot_seconds`` and at
  shutdown, alternately in slot 0 and 1 so that a crash while writing one leaves the
  other whole; then ``checkpoint`` names the slot, its parts and the last journal seq
  it includes, and the journal entries it includes are deleted (tombstones).

At start-up the topic is read to its end: the checkpoint's snapshot restores the
engine and the later journal entries are replayed in order, before consuming starts.
Records the state already holds but whose offsets were not committed before a crash
are recognised by their offset and skipped. The service's windows are global: it
runs as one replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from socialcrm import contract
from socialcrm.kafka import PRODUCED, EventProducer, client_id, ensure_compacted_topic
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import kpi_pb2
from socialcrm_kpi.engine import KpiEngine

log = logging.getLogger(__name__)

STATE_TOPIC = contract.topic_of(kpi_pb2.KpiState)


class KpiStateStore:
    name = "kpi-state"

    def __init__(
        self,
        settings: ServiceSettings,
        engine: KpiEngine,
        producer: EventProducer,
        snapshot_seconds: float,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.producer = producer
        self.snapshot_seconds = snapshot_seconds
        self._prefix = f"{settings.service_name}/"
        self._lock = asyncio.Lock()
        self._seq = 0
        self._snapshot_count = 0
        self._uncheckpointed: list[int] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        partitions = await ensure_compacted_topic(self.settings, STATE_TOPIC)
        records = await self._read_all(partitions)
        checkpoint = records.pop("checkpoint", None)
        journal = {
            int(key.removeprefix("journal/")): value
            for key, value in records.items()
            if key.startswith("journal/")
        }
        included = -1
        if checkpoint is not None:
            slot = checkpoint["slot"]
            self.engine.restore(
                {part: records[f"snapshot/{slot}/{part}"] for part in checkpoint["parts"]}
            )
            included = checkpoint["seq"]
            self._snapshot_count = slot + 1
        later = sorted(seq for seq in journal if seq > included)
        for seq in later:
            self.engine.replay(journal[seq])
        self._seq = max([included, *journal]) if (journal or checkpoint) else 0
        self._uncheckpointed = sorted(journal)
        log.info(
            "kpi state restored",
            extra={"snapshot_seq": included, "journal_batches_replayed": len(later)},
        )
        self._task = asyncio.create_task(self._snapshot_periodically(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.snapshot()

    async def check(self) -> None:
        if self._task is None or self._task.done():
            raise RuntimeError("state snapshots are not running")

    async def flush(self) -> None:
        """Write the journal entries applied since the last flush."""
        async with self._lock:
            await self._write_journal()

    async def snapshot(self) -> None:
        """Write the whole state, then the checkpoint naming it, then drop the old journal."""
        async with self._lock:
            # No await between taking the journal and the state: they describe one moment.
            await self._write_journal()
            parts = self.engine.to_state()
            slot = self._snapshot_count % 2
            await self._publish_all(
                {f"snapshot/{slot}/{name}": json.dumps(value) for name, value in parts.items()}
            )
            checkpoint = {"slot": slot, "seq": self._seq, "parts": sorted(parts)}
            await self._publish_all({"checkpoint": json.dumps(checkpoint)})
            self._snapshot_count += 1
            await self._publish_all({f"journal/{seq}": None for seq in self._uncheckpointed})
            self._uncheckpointed = []

    async def _write_journal(self) -> None:
        journal = self.engine.take_journal()
        if journal:
            self._seq += 1
            await self._publish_all({f"journal/{self._seq}": json.dumps(journal)})
            self._uncheckpointed.append(self._seq)

    async def _publish_all(self, documents: dict[str, str | None]) -> None:
        """Publish documents by key (None: a tombstone) and wait for their acknowledgement."""
        pending = []
        for key, document in documents.items():
            if document is None:
                future = await self.producer.producer.send(
                    STATE_TOPIC, None, key=(self._prefix + key).encode()
                )
            else:
                message = kpi_pb2.KpiState(
                    state_key=self._prefix + key,
                    state_json=document,
                    updated_at=contract.timestamp(),
                )
                future = await self.producer.producer.send(
                    STATE_TOPIC, contract.encode(message), key=contract.key_of(message)
                )
            pending.append(future)
        PRODUCED.labels(STATE_TOPIC).inc(len(pending))
        await asyncio.gather(*pending)

    async def _snapshot_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.snapshot_seconds)
            try:
                await self.snapshot()
            except Exception:
                log.exception("kpi state snapshot failed; retrying at the next interval")

    async def _read_all(self, partitions: list[TopicPartition]) -> dict[str, Any]:
        """The latest JSON document of every key of this service (tombstones removed)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id=client_id(self.settings) + "-state",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            documents: dict[str, Any] = {}
            while await self._behind(consumer, ends):
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        key = (record.key or b"").decode()
                        if not key.startswith(self._prefix):
                            continue
                        name = key.removeprefix(self._prefix)
                        if record.value is None:
                            documents.pop(name, None)
                        else:
                            state = kpi_pb2.KpiState.FromString(record.value)
                            documents[name] = json.loads(state.state_json)
            return documents
        finally:
            await consumer.stop()

    @staticmethod
    async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for partition, end in ends.items():
            if await consumer.position(partition) < end:
                return True
        return False
