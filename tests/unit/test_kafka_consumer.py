"""socialcrm.kafka.consumer.PartitionLag: the lag gauges, the caught-up partitions, and how
often they are worth measuring."""

from __future__ import annotations

from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from socialcrm.kafka.consumer import PartitionLag

TOPIC = "social.enriched.v1"


class FakeConsumer:
    """What PartitionLag reads of a consumer: its assignment, ends and positions."""

    def __init__(self, ends: dict[int, int | None], positions: dict[int, int]) -> None:
        self.ends = {TopicPartition(TOPIC, n): end for n, end in ends.items()}
        self.positions = {TopicPartition(TOPIC, n): at for n, at in positions.items()}

    def assignment(self) -> set[TopicPartition]:
        return set(self.ends)

    def last_stable_offset(self, partition: TopicPartition) -> int | None:
        return self.ends[partition]

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.ends[partition]

    async def position(self, partition: TopicPartition) -> int:
        return self.positions[partition]


def lag_of(group: str, partition: int) -> float | None:
    labels = {"group": group, "topic": TOPIC, "partition": str(partition)}
    return REGISTRY.get_sample_value("socialcrm_consumer_lag_records", labels)


async def test_the_lag_of_each_partition_and_the_caught_up_ones() -> None:
    lag = PartitionLag("lag-test-measure")
    consumer = FakeConsumer({0: 10, 1: 7, 2: None}, {0: 4, 1: 7, 2: 0})

    caught_up = await lag.measure(consumer)

    assert caught_up == {TopicPartition(TOPIC, 1)}
    assert (lag_of("lag-test-measure", 0), lag_of("lag-test-measure", 1)) == (6, 0)
    assert lag_of("lag-test-measure", 2) is None  # nothing fetched from it yet

    consumer.ends.pop(TopicPartition(TOPIC, 0))  # revoked: its series goes
    consumer.positions[TopicPartition(TOPIC, 1)] = 5
    consumer.ends[TopicPartition(TOPIC, 1)] = 9
    assert await lag.measure(consumer) == set()
    assert (lag_of("lag-test-measure", 0), lag_of("lag-test-measure", 1)) == (None, 4)


async def test_the_lag_is_due_again_after_its_interval() -> None:
    now = [100.0]
    lag = PartitionLag("lag-test-due", report_seconds=1.0, clock=lambda: now[0])
    assert lag.due()  # never measured

    await lag.measure(FakeConsumer({0: 3}, {0: 3}))
    now[0] += 0.999
    assert not lag.due()
    now[0] += 0.001
    assert lag.due()
