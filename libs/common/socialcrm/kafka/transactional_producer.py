"""The producer of Kafka transactions, as the services' ``EventProducer``."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from socialcrm.kafka import connection
from socialcrm.kafka.producer import EventProducer
from socialcrm.settings import ServiceSettings


class TransactionalProducer(EventProducer):
    """An ``EventProducer`` whose records belong to Kafka transactions.

    ``publish``, ``dead_letter`` and the state store's writes go into the transaction
    opened by ``begin``; nothing of it is visible to read-committed readers before
    ``commit``, and nothing after ``abort``."""

    name = "kafka-transactional-producer"
    replaces_failed_client = False

    def __init__(self, settings: ServiceSettings, transactional_id: str) -> None:
        super().__init__(settings)
        self.transactional_id = transactional_id

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Create the client and initialise its transactions: this aborts the open
        transaction of any former producer with the same transactional id, and fences it."""
        producer = connection.producer(self.settings, transactional_id=self.transactional_id)
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def begin(self) -> None:
        await self.producer.begin_transaction()

    async def commit(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
        """Add the next offsets to consume to the transaction, then commit it."""
        if offsets:
            await self.producer.send_offsets_to_transaction(
                {tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()}, group_id
            )
        await self.producer.commit_transaction()

    async def abort(self) -> None:
        await self.producer.abort_transaction()
