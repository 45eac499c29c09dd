"""``socialcrm-dlq``: inspect a dead-letter topic, and replay it after a fix.

Replay republishes each dead letter's original bytes, key and headers to its source
topic, so the fixed consumer processes it again; consumers are idempotent, so a
record replayed twice changes nothing. Replay commits its progress in the consumer
group ``socialcrm-dlq-replay``: an interrupted replay resumes where it stopped.
A dead letter whose original value was too large to carry whole (header
``dlq.value_truncated``) is replayed from the original record, read in its source
topic at its partition and offset, while retention keeps it; otherwise it is counted
as unavailable and skipped.

Anyone able to write to a dead-letter topic can plant an envelope naming any topic, so a
dead letter read from ``X.dlq`` is replayed to ``X`` only (the topic it was dead-lettered
from), or to a topic given with ``--allow-topic``; any other is refused, counted, and makes
the exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from socialcrm import contract
from socialcrm.kafka import connection
from socialcrm.kafka.dead_letter import TRUNCATED_HEADER
from socialcrm.settings import ServiceSettings

REPLAY_GROUP = "socialcrm-dlq-replay"
# Fetch size of the readers: a record as large as the broker takes, with room to spare.
_FETCH_BYTES = 4 * 1024 * 1024
# Headers the dead-lettering added; the replayed record carries the original ones only.
_DLQ_HEADER_PREFIX = "dlq."


@dataclass(frozen=True)
class Replay:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def replay_of(envelope: contract.DeadLetter) -> Replay:
    """The record to republish for one dead letter (pure)."""
    return Replay(
        topic=envelope.source_topic,
        key=envelope.original_key or None,
        value=envelope.original_value,
        headers=[
            (name, value)
            for name, value in sorted(envelope.original_headers.items())
            if not name.startswith(_DLQ_HEADER_PREFIX)
        ],
    )


def may_replay_to(dlq_topic: str, topic: str, allowed_topics: Collection[str] = ()) -> bool:
    """Whether a dead letter read from ``dlq_topic`` may be republished to ``topic`` (pure)."""
    return topic == dlq_topic.removesuffix(contract.DLQ_SUFFIX) or topic in allowed_topics


@dataclass(frozen=True)
class ReplayCounts:
    replayed: int
    skipped: int
    unavailable: int
    refused: int


def _settings(bootstrap: str) -> ServiceSettings:
    """The tool's connection: the brokers given, the security of the KAFKA_* variables."""
    return ServiceSettings(kafka_bootstrap_servers=bootstrap, service_name="socialcrm-dlq")


async def _assign_all(
    bootstrap: str, topic: str, group: str | None
) -> tuple[AIOKafkaConsumer, dict[TopicPartition, int]]:
    """A consumer on every partition of ``topic``, at the group's committed offsets.

    Returns it with the end offset of each non-empty partition: what to read up to.
    """
    settings = _settings(bootstrap)
    try:
        count = await connection.partitions_of(settings, topic)
    except RuntimeError as error:
        raise SystemExit(f"[dlq] cannot read {error}") from error
    consumer = connection.consumer(
        settings,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=_FETCH_BYTES,
    )
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in range(count)]
    consumer.assign(partitions)
    for partition in partitions:
        committed = await consumer.committed(partition) if group else None
        if committed is None:
            await consumer.seek_to_beginning(partition)
        else:
            consumer.seek(partition, committed)
    ends = await consumer.end_offsets(partitions)
    return consumer, {tp: end for tp, end in ends.items() if end > 0}


async def show(bootstrap: str, dlq_topic: str) -> int:
    consumer, ends = await _assign_all(bootstrap, dlq_topic, group=None)
    reasons: Counter[tuple[str, str]] = Counter()
    try:
        async for dead in _read_until(consumer, ends):
            reasons[(dead.envelope.error_type, dead.envelope.reason[:120])] += 1
    finally:
        await consumer.stop()
    print(f"{sum(reasons.values())} dead letters on {dlq_topic}")
    for (error_type, reason), count in reasons.most_common():
        print(f"{count:>8}  {error_type:<20} {reason}")
    return 0


@dataclass(frozen=True)
class _DeadLetter:
    envelope: contract.DeadLetter
    partition: TopicPartition
    offset: int
    value_truncated: bool


async def _read_until(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]
) -> AsyncIterator[_DeadLetter]:
    """Dead letters with their partition and offset, up to the given end offsets."""
    remaining = {tp for tp, end in ends.items() if await consumer.position(tp) < end}
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=2000)
        for partition, records in batches.items():
            for record in records:
                if record.offset < ends[partition]:
                    yield _DeadLetter(
                        contract.DeadLetter.FromString(record.value or b""),
                        partition,
                        record.offset,
                        value_truncated=any(
                            name == TRUNCATED_HEADER for name, _ in record.headers or ()
                        ),
                    )
            if await consumer.position(partition) >= ends[partition]:
                remaining.discard(partition)


async def _original_value(bootstrap: str, envelope: contract.DeadLetter) -> bytes | None:
    """The value of the record ``envelope`` came from, read in its source topic; None when
    retention (or compaction) removed it."""
    consumer = connection.consumer(
        _settings(bootstrap),
        purpose="source",
        enable_auto_commit=False,
        max_partition_fetch_bytes=_FETCH_BYTES,
    )
    await consumer.start()
    try:
        source = TopicPartition(envelope.source_topic, envelope.source_partition)
        consumer.assign([source])
        consumer.seek(source, envelope.source_offset)
        batches = await consumer.getmany(source, timeout_ms=5000)
        for record in batches.get(source, []):
            if record.offset == envelope.source_offset:
                value: bytes | None = record.value
                return value
        return None
    finally:
        await consumer.stop()


async def replay(
    bootstrap: str,
    dlq_topic: str,
    error_type: str | None,
    dry_run: bool,
    allowed_topics: Collection[str] = (),
) -> ReplayCounts:
    consumer, ends = await _assign_all(bootstrap, dlq_topic, REPLAY_GROUP)
    # The broker, not this client, judges a replayed record's size.
    producer = connection.producer(_settings(bootstrap), max_request_size=_FETCH_BYTES)
    await producer.start()
    replayed = skipped = unavailable = 0
    refused: Counter[str] = Counter()
    try:
        async for dead in _read_until(consumer, ends):
            if error_type and dead.envelope.error_type != error_type:
                skipped += 1
            elif not may_replay_to(dlq_topic, dead.envelope.source_topic, allowed_topics):
                refused[dead.envelope.source_topic] += 1
            elif dry_run:
                replayed += 1
            else:
                target = replay_of(dead.envelope)
                whole = (
                    await _original_value(bootstrap, dead.envelope)
                    if dead.value_truncated
                    else target.value
                )
                if whole is None:
                    unavailable += 1
                else:
                    await producer.send_and_wait(
                        target.topic, whole, key=target.key, headers=target.headers
                    )
                    replayed += 1
            if not dry_run:
                await consumer.commit({dead.partition: dead.offset + 1})
            print(f"\r[dlq] replayed {replayed}, skipped {skipped}", end="", file=sys.stderr)
    finally:
        await producer.stop()
        await consumer.stop()
    verb = "would replay" if dry_run else "replayed"
    print(f"\n[dlq] {verb} {replayed} records from {dlq_topic}, skipped {skipped}", file=sys.stderr)
    if unavailable:
        print(
            f"[dlq] {unavailable} truncated dead letters not replayed: their original record"
            " is no longer in its source topic",
            file=sys.stderr,
        )
    if refused:
        source = dlq_topic.removesuffix(contract.DLQ_SUFFIX)
        named = ", ".join(f"{topic!r} ({count})" for topic, count in refused.most_common())
        print(
            f"[dlq] refused {refused.total()} dead letters naming another topic than {source}"
            f" (planted or corrupt; --allow-topic lets one through): {named}",
            file=sys.stderr,
        )
    return ReplayCounts(replayed, skipped, unavailable, refused.total())


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="socialcrm-dlq",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--bootstrap",
        default=ServiceSettings().kafka_bootstrap_servers,
        help="Kafka brokers [KAFKA_BOOTSTRAP_SERVERS or localhost:9092]",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    show_parser = commands.add_parser("show", help="count a dead-letter topic's records by reason")
    show_parser.add_argument("topic", help="dead-letter topic, e.g. social.routed.v1.dlq")
    replay_parser = commands.add_parser("replay", help="republish dead letters to their source")
    replay_parser.add_argument("topic", help="dead-letter topic, e.g. social.routed.v1.dlq")
    replay_parser.add_argument(
        "--error-type",
        choices=[
            "decode_error",
            "contract_violation",
            "handler_error",
            "output_too_large",
            "output_not_encodable",
            "output_refused",
        ],
        help="replay only this kind of failure",
    )
    replay_parser.add_argument(
        "--dry-run", action="store_true", help="count what would be replayed, change nothing"
    )
    replay_parser.add_argument(
        "--allow-topic",
        action="append",
        default=[],
        metavar="TOPIC",
        help="also replay dead letters naming TOPIC as their source (repeatable); others "
        "than the dead-letter topic's own source are refused",
    )
    args = parser.parse_args()
    if not args.topic.endswith(contract.DLQ_SUFFIX):
        parser.error(f"{args.topic} is not a dead-letter topic (they end in {contract.DLQ_SUFFIX})")
    if args.command == "show":
        raise SystemExit(asyncio.run(show(args.bootstrap, args.topic)))
    counts = asyncio.run(
        replay(args.bootstrap, args.topic, args.error_type, args.dry_run, args.allow_topic)
    )
    raise SystemExit(1 if counts.refused else 0)


if __name__ == "__main__":
    main()
