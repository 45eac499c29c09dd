"""Topic administration the benchmarks need: create one, list its partitions, its end."""

from __future__ import annotations

import contextlib

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from socialcrm.kafka import connection
from socialcrm.settings import ServiceSettings


def bench_settings(bootstrap: str, client: str) -> ServiceSettings:
    """The connection of a benchmark's clients: the brokers under test, client id
    ``client``, the security of the KAFKA_* variables (the services' own)."""
    return ServiceSettings(kafka_bootstrap_servers=bootstrap, service_name=client)


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    async with connection.started_admin(bench_settings(bootstrap, "bench")) as admin:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(topic, partitions, 1)])


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    count = await connection.partitions_of(bench_settings(bootstrap, "bench-stages"), topic)
    return [TopicPartition(topic, n) for n in range(count)]


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    partitions = await partitions_of(bootstrap, topic)
    consumer = connection.consumer(bench_settings(bootstrap, "bench-stages"))
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()
