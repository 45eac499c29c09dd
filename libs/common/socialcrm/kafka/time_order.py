"""The records of co-partitioned topics in the order they were written (pure logic).

A stateful processor reads partition N of several topics side by side, and after a
failover one topic's backlog can come before another's: a reply before the interaction it
answers, a later answer before an earlier one. Like Kafka Streams' tasks, which pick the
buffered record with the lowest timestamp across their partitions, the records of one
partition number fetched together are handled oldest first (record timestamps, producer
time), in runs of consecutive records of one topic partition.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence

from aiokafka import ConsumerRecord, TopicPartition

Records = list[ConsumerRecord[bytes, bytes]]


def by_partition_number(
    fetched: Mapping[TopicPartition, Records],
) -> dict[int, dict[TopicPartition, Records]]:
    grouped: dict[int, dict[TopicPartition, Records]] = defaultdict(dict)
    for partition, records in fetched.items():
        grouped[partition.partition][partition] = records
    return grouped


def runs_in_time_order(
    fetched: Mapping[TopicPartition, Records],
) -> list[tuple[TopicPartition, Records]]:
    """The records of ``fetched`` (one partition number), oldest timestamp first, ties in
    topic order, as runs of consecutive records of one topic partition."""
    ordered = heapq.merge(
        *(
            [(r.timestamp, index, r.offset, partition, r) for r in records]
            for index, (partition, records) in enumerate(sorted(fetched.items()))
        )
    )
    runs: list[tuple[TopicPartition, Records]] = []
    for _, _, _, partition, record in ordered:
        if runs and runs[-1][0] == partition:
            runs[-1][1].append(record)
        else:
            runs.append((partition, [record]))
    return runs


def first_offsets(runs: Sequence[tuple[TopicPartition, Records]]) -> dict[TopicPartition, int]:
    """Where each topic partition of ``runs`` starts: to go back to if they are not handled."""
    firsts: dict[TopicPartition, int] = {}
    for partition, records in runs:
        firsts.setdefault(partition, records[0].offset)
    return firsts
