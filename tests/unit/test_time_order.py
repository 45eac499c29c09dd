"""Records of co-partitioned topics handled in the order they were written (no I/O)."""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition

from socialcrm.kafka.time_order import by_partition_number, first_offsets, runs_in_time_order

REPLIES, COMMANDS = TopicPartition("replies", 3), TopicPartition("commands", 3)


def record(partition: TopicPartition, offset: int, timestamp: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        partition.topic, partition.partition, offset, timestamp, 0, b"k", b"v", None, 1, 1, []
    )


def test_a_partition_number_is_handled_oldest_first_in_runs() -> None:
    fetched = {
        COMMANDS: [record(COMMANDS, 10, 8_900), record(COMMANDS, 11, 9_000)],
        REPLIES: [record(REPLIES, 4, 6_900), record(REPLIES, 5, 9_500)],
    }
    runs = runs_in_time_order(fetched)
    assert [(p.topic, [r.offset for r in rs]) for p, rs in runs] == [
        ("replies", [4]),
        ("commands", [10, 11]),
        ("replies", [5]),
    ]
    assert first_offsets(runs[1:]) == {COMMANDS: 10, REPLIES: 5}


def test_partition_numbers_are_grouped_apart() -> None:
    other = TopicPartition("replies", 1)
    grouped = by_partition_number({REPLIES: [], COMMANDS: [], other: []})
    assert {n: sorted(p.topic for p in ps) for n, ps in grouped.items()} == {
        3: ["commands", "replies"],
        1: ["replies"],
    }
