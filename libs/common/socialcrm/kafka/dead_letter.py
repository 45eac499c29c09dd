"""The dead-letter record of a consumed record, bounded to the broker's record limit (pure).

A record can be dead-lettered because its value was too large to handle, so the envelope
carrying it may not fit the limit: the original value is then truncated, and the
``dlq.value_truncated`` header says so. Key, headers, source topic, partition and offset
always travel, so the original can still be read from its source topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from socialcrm import contract

TRUNCATED_HEADER = "dlq.value_truncated"
ORIGINAL_SIZE_HEADER = "dlq.original_value_bytes"
# Reasons quote exceptions: bounded so that one cannot make the envelope too large.
MAX_REASON_CHARS = 1000
# Bytes a record costs beyond its key, value and headers: Kafka's record batch header
# (61 bytes), the record's own varints, one varint per header; with room to spare.
RECORD_OVERHEAD_BYTES = 512
# Each header also costs its name and value length varints.
_PER_HEADER_BYTES = 10
# original_value's field tag and length varint in the envelope.
_VALUE_FIELD_BYTES = 8


@dataclass(frozen=True)
class SourceRecord:
    """What the dead letter tells of the consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class DeadLetterRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    value_truncated: bool


def record_size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """An upper bound of the bytes a one-record batch takes on the broker."""
    return (
        RECORD_OVERHEAD_BYTES
        + len(key or b"")
        + len(value or b"")
        + sum(len(name.encode()) + len(data) + _PER_HEADER_BYTES for name, data in headers)
    )


def dead_letter_record(
    source: SourceRecord,
    error: contract.ContractError,
    consumer: str,
    failed_at: Timestamp,
    max_record_bytes: int,
) -> DeadLetterRecord:
    """The record to send to the source topic's dead-letter topic, at most ``max_record_bytes``."""
    reason = error.reason[:MAX_REASON_CHARS]
    envelope = contract.DeadLetter(
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        original_key=source.key or b"",
        original_headers=dict(source.headers),
        reason=reason,
        error_type=error.error_type,
        consumer=consumer,
        failed_at=failed_at,
    )
    dlq_headers = [
        ("dlq.reason", reason.encode()),
        ("dlq.error_type", error.error_type.encode()),
        ("dlq.consumer", consumer.encode()),
    ]
    value = source.value or b""
    truncation_headers = [
        (TRUNCATED_HEADER, b"true"),
        (ORIGINAL_SIZE_HEADER, str(len(value)).encode()),
    ]

    def size_without_value(key: bytes | None, headers: list[tuple[str, bytes]]) -> int:
        extra = [*headers, *truncation_headers]
        return record_size(key, envelope.SerializeToString(), extra) + _VALUE_FIELD_BYTES

    # The original headers travel as record headers too (trace context, for one), unless
    # carrying them twice would leave no room: the envelope keeps them anyway.
    key = source.key
    headers = [*source.headers, *dlq_headers]
    if size_without_value(key, headers) > max_record_bytes:
        headers = dlq_headers
    if size_without_value(key, headers) > max_record_bytes:
        # A huge key or headers: the source offset still finds the original record.
        envelope.original_key = b""
        envelope.original_headers.clear()
        key = None
    room = max_record_bytes - size_without_value(key, headers)
    truncated = len(value) > room
    if truncated:
        value = value[: max(room, 0)]
        headers = [*headers, *truncation_headers]
    envelope.original_value = value
    return DeadLetterRecord(
        topic=contract.dlq_topic(source.topic),
        key=key,
        value=envelope.SerializeToString(),
        headers=headers,
        value_truncated=truncated,
    )
