"""Durable state of the kpi service: partition 0 of the compacted changelog ``kpi.state.v2``.

One active instance holds every input partition (see the README), so its state is one
``PartitionedStore`` partition. Event sourcing with snapshots, under these keys:

- ``journal/<seq>``: the engine's journal entries (the facts applied and the watermark
  advances) of one batch;
- ``snapshot/<part>``: the whole state, every ``snapshot_seconds``, then ``checkpoint``
  naming the parts and the last journal seq they include, and tombstones for that
  journal and for parts no longer used.

Everything a batch writes belongs to the batch's transaction, with its outputs and input
offsets: the changelog never holds the effect of a record whose offset was not committed,
and a restore (read committed) is exactly the state at the last committed offsets. No
offset bookkeeping is needed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from socialcrm import contract
from socialcrm.kafka.producer import EventProducer
from socialcrm.settings import ServiceSettings
from socialcrm.state import Codec, PartitionedStore
from socialcrm.v1 import kpi_pb2
from socialcrm_kpi.engine import KpiEngine

STATE_TOPIC = contract.topic_of(kpi_pb2.KpiState)
STATE_PARTITION = 0
CHECKPOINT = "checkpoint"
JOURNAL = "journal/"
SNAPSHOT = "snapshot/"

_CODEC = Codec(encode=contract.encode, decode=kpi_pb2.KpiState.FromString)


def restore_engine(engine: KpiEngine, documents: Mapping[str, Any]) -> int:
    """Restore ``engine`` from the documents of the changelog (key -> JSON value): the
    checkpoint's snapshot, then the later journal entries in order. The last journal seq."""
    checkpoint = documents.get(CHECKPOINT)
    included = 0
    if checkpoint is not None:
        engine.restore({part: documents[SNAPSHOT + part] for part in checkpoint["parts"]})
        included = int(checkpoint["seq"])
    journal = {
        int(key.removeprefix(JOURNAL)): value
        for key, value in documents.items()
        if key.startswith(JOURNAL)
    }
    for seq in sorted(seq for seq in journal if seq > included):
        engine.replay(journal[seq])
    return max([included, *journal])


def state_writes(
    engine: KpiEngine, held: Collection[str], seq: int, snapshot: bool
) -> tuple[dict[str, Any], int]:
    """The documents (None: delete) that make the changelog, holding the keys ``held``, hold
    ``engine``'s journal since the last call, and its whole state when ``snapshot``; with
    the new last seq."""
    writes: dict[str, Any] = {}
    journal = engine.take_journal()
    if journal:
        seq += 1
        if not snapshot:
            writes[f"{JOURNAL}{seq}"] = journal
    if snapshot:
        parts = engine.to_state()
        writes.update({SNAPSHOT + name: part for name, part in parts.items()})
        writes[CHECKPOINT] = {"seq": seq, "parts": sorted(parts)}
        for key in held:
            stale_part = key.startswith(SNAPSHOT) and key.removeprefix(SNAPSHOT) not in parts
            if stale_part or key.startswith(JOURNAL):
                writes[key] = None
    return writes, seq


class KpiStateStore:
    """The kpi engine's state in its changelog, written inside the batch's transaction."""

    def __init__(
        self,
        settings: ServiceSettings,
        producer: EventProducer,
        *,
        snapshot_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.snapshot_seconds = snapshot_seconds
        self.clock = clock
        self._store = PartitionedStore(
            name="kpi-state",
            settings=settings,
            producer=producer,
            topic=STATE_TOPIC,
            input_topic=None,
            codec=_CODEC,
            # One partition: one active instance holds all of kpi's state.
            partitions=1,
        )
        self._seq = 0
        self._journal_since_snapshot = False
        self._snapshot_at = clock()

    async def create(self) -> None:
        """Make sure the changelog exists."""
        await self._store.start()

    async def restore(self, engine: KpiEngine) -> None:
        """Own the state and restore ``engine`` (empty) from the committed changelog."""
        await self._store.assign([STATE_PARTITION])
        documents = {
            key: json.loads(value.state_json) for key, value in self._store.items(STATE_PARTITION)
        }
        self._seq = restore_engine(engine, documents)
        self._journal_since_snapshot = any(key.startswith(JOURNAL) for key in documents)
        self._snapshot_at = self.clock()

    def drop(self, *, committed: bool) -> None:
        """Stop owning the state. ``committed``: it is all in the changelog (a rebalance),
        so a copy may be kept for a quick restore; else (an aborted transaction) the copy
        holds uncommitted writes and goes too."""
        if committed:
            self._store.revoke([STATE_PARTITION])
        else:
            self._store.lose([STATE_PARTITION])

    async def write(self, engine: KpiEngine) -> None:
        """Write the journal since the last write (and a snapshot when due) to the changelog,
        inside the open transaction."""
        due = self.clock() - self._snapshot_at >= self.snapshot_seconds
        snapshot = due and (self._journal_since_snapshot or engine.has_journal)
        held = [key for key, _ in self._store.items(STATE_PARTITION)]
        writes, self._seq = state_writes(engine, held, self._seq, snapshot)
        if snapshot:
            self._snapshot_at = self.clock()
            self._journal_since_snapshot = False
        elif writes:
            self._journal_since_snapshot = True
        now = contract.timestamp()
        for key, document in writes.items():
            value = None
            if document is not None:
                value = kpi_pb2.KpiState(
                    state_key=key, state_json=json.dumps(document), updated_at=now
                )
            self._store.put(STATE_PARTITION, key, value)
        await self._store.flush()
