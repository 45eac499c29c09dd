"""kpi's state as partitions come and go, in the order the transactional processor calls
it, offline: the changelog and the transactions are fakes (committed or aborted records),
the state store and the kpi code are real.

Issue 23, item 6: a transaction that fails while a rebalance waits for the processor's
lock is released to the rebalance (revoked) before it is aborted. The state must not
survive as a copy: it holds the aborted batch, whose records would then count as already
applied when read again and whose window closings would never be published.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from google.protobuf.message import Message

from socialcrm.kafka.producer import EventProducer
from socialcrm.settings import ServiceSettings
from socialcrm.state import store as state_store
from socialcrm_kpi.engine import KpiEngine
from socialcrm_kpi.handlers import ROUTED_TOPIC, KpiHandlers
from socialcrm_kpi.ownership import KpiOwnership
from socialcrm_kpi.spikes import SpikeSettings
from socialcrm_kpi.state import KpiStateStore
from socialcrm_kpi.windows import ShareOfVoice, WindowSpec
from tests.unit.test_kpi_handlers import T0, Clock, record, routed, snapshots

PARTITIONS = frozenset({(ROUTED_TOPIC, 0)})


@dataclass
class Changelog:
    """The records of the state topic, each committed, aborted or in the open transaction."""

    records: list[tuple[bytes, bytes | None, str]] = field(default_factory=list)

    def end(self, outcome: str) -> None:
        self.records = [
            (key, value, outcome if status == "open" else status)
            for key, value, status in self.records
        ]


class TransactionalFake(EventProducer):
    """The producer's side the state store uses: records join the open transaction."""

    def __init__(self, changelog: Changelog) -> None:
        super().__init__(ServiceSettings())
        self.changelog = changelog

    async def send_record(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        self.changelog.records.append((key, value, "open"))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(offset=len(self.changelog.records) - 1))
        return future


class RestoreConsumer:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def read_committed(changelog: Changelog) -> Callable[..., Any]:
    """``read_to_end`` of the state store over the fake changelog, committed records only."""

    async def read_to_end(
        consumer: object,
        starts: Mapping[TopicPartition, int | None],
        apply: Callable[[ConsumerRecord[bytes, bytes]], None],
    ) -> dict[TopicPartition, int]:
        for partition, start in starts.items():
            for offset in range(start or 0, len(changelog.records)):
                key, value, status = changelog.records[offset]
                if status == "committed":
                    apply(
                        ConsumerRecord(
                            partition.topic,
                            partition.partition,
                            offset,
                            0,
                            0,
                            key,
                            value,
                            None,
                            len(key),
                            len(value or b""),
                            (),
                        )
                    )
        return {partition: len(changelog.records) for partition in starts}

    return read_to_end


@pytest.fixture
def changelog(monkeypatch: pytest.MonkeyPatch) -> Changelog:
    log = Changelog()
    monkeypatch.setattr(state_store, "changelog_consumer", lambda *_: RestoreConsumer())
    monkeypatch.setattr(state_store, "read_to_end", read_committed(log))
    return log


def ownership(changelog: Changelog, clock: Clock) -> KpiOwnership:
    def new_engine() -> KpiEngine:
        return KpiEngine(
            [WindowSpec(60, 60)],
            allowed_lateness_seconds=0,
            share_of_voice=ShareOfVoice(),
            spike_settings=SpikeSettings(),
            backlog_max_age_seconds=3600,
        )

    handlers = KpiHandlers(
        new_engine,
        brands=frozenset({"acme"}),
        queues=frozenset({"care"}),
        idle_partition_seconds=3600,
        clock=clock,
    )
    store = KpiStateStore(
        ServiceSettings(), TransactionalFake(changelog), snapshot_seconds=3600, clock=clock
    )
    return KpiOwnership(handlers, store)


async def batch(kpis: KpiOwnership, *events: tuple[str, float]) -> list[Message]:
    """What the processor does with a batch inside its transaction, up to the commit."""
    messages: list[Message] = []
    for external_id, at in events:
        messages += kpis.handlers.on_routed(routed(external_id, at), record(ROUTED_TOPIC, 0))
    messages += kpis.punctuate(kpis.handlers.clock(), caught_up=PARTITIONS)
    await kpis.commit_state()
    return messages


async def test_a_batch_aborted_while_a_revoke_waited_is_published_when_read_again(
    changelog: Changelog,
) -> None:
    kpis = ownership(changelog, Clock())
    await kpis.assigned(PARTITIONS)
    assert await batch(kpis, ("a", T0 + 1), ("b", T0 + 2)) == []
    changelog.end("committed")

    # The batch that closes the first window: its transaction fails at the commit; the
    # rebalance waiting for the lock gets it before the processor aborts.
    closing = await batch(kpis, ("c", T0 + 61))
    assert [s.values["volume"] for s in snapshots(closing) if "channel" in s.dimensions] == [2]
    await kpis.revoked(PARTITIONS)
    changelog.end("aborted")

    # The same member is given the partition back and reads the batch again.
    await kpis.assigned(PARTITIONS)
    again = await batch(kpis, ("c", T0 + 61))
    changelog.end("committed")
    published = [s.values["volume"] for s in snapshots(again) if "channel" in s.dimensions]
    assert published == [2], "the window the aborted batch closed was never published"


async def test_a_lost_transaction_restores_the_committed_state_only(
    changelog: Changelog,
) -> None:
    kpis = ownership(changelog, Clock())
    await kpis.assigned(PARTITIONS)
    await batch(kpis, ("a", T0 + 1))
    changelog.end("committed")
    await batch(kpis, ("b", T0 + 2))
    await kpis.lost(PARTITIONS)
    changelog.end("aborted")

    await kpis.assigned(PARTITIONS)
    assert kpis.handlers.engine.backlog_by_queue(T0 + 3)["care"].items == 1
