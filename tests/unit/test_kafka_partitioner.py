"""socialcrm.kafka.partitioner: every key goes to the partition aiokafka's default (and
Kafka's Java client) sends it to."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from socialcrm.kafka.partitioner import murmur2, partition_of


def test_murmur2_is_aiokafka_s_on_keys_of_every_length() -> None:
    draw = random.Random(26)
    keys = [bytes(draw.randrange(256) for _ in range(n)) for n in range(130) for _ in range(40)]
    keys += [b"", b"\x00", b"\xff" * 7, "conversation-\u00e9t\u00e9".encode()]
    assert [murmur2(key) for key in keys] == [aiokafka_murmur2(key) for key in keys]


# Kafka's own test vectors (UtilsTest.testMurmur2), Java's signed ints.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_murmur2_is_the_java_client_s() -> None:
    for key, signed in JAVA_MURMUR2.items():
        assert murmur2(key) == signed & 0xFFFFFFFF


def test_keyed_records_go_where_aiokafka_s_default_sends_them() -> None:
    partitions = list(range(6))
    default = DefaultPartitioner()
    for key in [*JAVA_MURMUR2, b"conversation-42", b"0123456789" * 5]:
        assert partition_of(key, partitions, [1]) == default(key, partitions, [1])


def test_a_record_without_a_key_goes_to_a_partition_available() -> None:
    assert partition_of(None, [0, 1, 2], [2]) == 2
