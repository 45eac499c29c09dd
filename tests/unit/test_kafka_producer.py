"""EventProducer replaces its client after a send failed for good (offline, fake clients).

After a broker restart, a batch that expired while the broker was away leaves the client's
idempotence sequence out of step: every later batch is refused as out of order until the
client is replaced. Whoever sent (an ingest webhook, a stream's outputs), the producer heals.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber

from socialcrm.kafka import connection
from socialcrm.kafka.producer import EventProducer
from socialcrm.kafka.transactional_producer import TransactionalProducer
from socialcrm.settings import ServiceSettings


class FakeClient:
    """An aiokafka producer whose sends fail with ``error`` (None: acknowledged)."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.started = self.stopped = False
        self.sent = 0

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def send(self, topic: str, value: bytes | None, **_: Any) -> asyncio.Future[object]:
        self.sent += 1
        # Acknowledged (or refused) later, as the broker answers.
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        if self.error is None:
            loop.call_soon(future.set_result, None)
        else:
            loop.call_soon(future.set_exception, self.error)
        return future


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> list[FakeClient]:
    """The clients the producer creates, in order: the first fails as given, then healthy."""
    made: list[FakeClient] = []
    failures: list[Exception | None] = [OutOfOrderSequenceNumber()]

    def new_client(settings: ServiceSettings) -> FakeClient:
        made.append(FakeClient(failures.pop(0) if failures else None))
        return made[-1]

    monkeypatch.setattr(connection, "producer", new_client)
    return made


async def test_a_send_refused_as_out_of_order_replaces_the_client_once(
    clients: list[FakeClient],
) -> None:
    producer = EventProducer(ServiceSettings())
    await producer.start()
    failed = [await producer.send_record("t", b"v", key=b"k") for _ in range(3)]
    for future in failed:
        with pytest.raises(OutOfOrderSequenceNumber):
            await future
    await producer.settled()

    assert len(clients) == 2, "three failures of one client make one replacement"
    assert clients[0].stopped
    assert clients[1].started
    await (await producer.send_record("t", b"v", key=b"k"))
    assert clients[1].sent == 1
    await producer.stop()


async def test_a_retriable_failure_keeps_the_client(
    clients: list[FakeClient],
) -> None:
    producer = EventProducer(ServiceSettings())
    await producer.start()
    clients[0].error = KafkaConnectionError("broker away")
    with pytest.raises(KafkaConnectionError):
        await (await producer.send_record("t", b"v", key=b"k"))
    await producer.settled()
    assert len(clients) == 1
    assert not clients[0].stopped
    await producer.stop()


async def test_a_transactional_producer_leaves_recovery_to_its_processor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new client with the same transactional id would fence the one in use."""

    def failing_client(settings: ServiceSettings, **options: Any) -> FakeClient:
        return FakeClient(OutOfOrderSequenceNumber())

    monkeypatch.setattr(connection, "producer", failing_client)
    producer = TransactionalProducer(ServiceSettings(), "kpi-0")
    await producer.start()
    first = producer.producer
    with pytest.raises(OutOfOrderSequenceNumber):
        await (await producer.send_record("t", b"v", key=b"k"))
    await producer.settled()
    assert producer.producer is first
    await producer.stop()
