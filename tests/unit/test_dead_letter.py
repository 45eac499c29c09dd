"""The dead-letter record of a consumed record, bounded to the broker's record limit."""

from __future__ import annotations

from socialcrm import contract
from socialcrm.kafka.dead_letter import (
    ORIGINAL_SIZE_HEADER,
    TRUNCATED_HEADER,
    SourceRecord,
    dead_letter_record,
    record_size,
)

LIMIT = 10_000
FAILED_AT = contract.timestamp()
TRACE = ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")


def source(value: bytes, key: bytes | None = b"conversation-1", **extra: bytes) -> SourceRecord:
    return SourceRecord(
        topic="social.enriched.v1",
        partition=3,
        offset=42,
        key=key,
        value=value,
        headers=[TRACE, *extra.items()],
    )


def dead(
    record: SourceRecord, reason: str = "too large"
) -> tuple[contract.DeadLetter, dict[str, bytes], int]:
    letter = dead_letter_record(
        record, contract.ContractError("output_too_large", reason), "router", FAILED_AT, LIMIT
    )
    assert letter.topic == "social.enriched.v1.dlq"
    return (
        contract.DeadLetter.FromString(letter.value),
        dict(letter.headers),
        record_size(letter.key, letter.value, letter.headers),
    )


def test_a_small_record_travels_whole_with_its_reason_and_headers() -> None:
    envelope, headers, _ = dead(source(b"value"))
    assert envelope.original_value == b"value"
    assert (envelope.source_topic, envelope.source_partition, envelope.source_offset) == (
        "social.enriched.v1",
        3,
        42,
    )
    assert envelope.original_key == b"conversation-1"
    assert envelope.original_headers == {"traceparent": TRACE[1]}
    assert (envelope.error_type, envelope.reason, envelope.consumer) == (
        "output_too_large",
        "too large",
        "router",
    )
    assert headers["traceparent"] == TRACE[1]
    assert headers["dlq.error_type"] == b"output_too_large"
    assert TRUNCATED_HEADER not in headers


def test_a_value_too_large_to_carry_is_cut_and_said_so() -> None:
    value = b"v" * LIMIT
    envelope, headers, size = dead(source(value))
    assert size <= LIMIT
    assert headers[TRUNCATED_HEADER] == b"true"
    assert headers[ORIGINAL_SIZE_HEADER] == str(LIMIT).encode()
    assert value.startswith(envelope.original_value)
    assert len(envelope.original_value) > LIMIT / 2
    # What finds the original in its topic travels whole.
    assert (envelope.source_partition, envelope.source_offset) == (3, 42)
    assert envelope.original_key == b"conversation-1"


def test_a_long_reason_is_bounded() -> None:
    envelope, headers, size = dead(source(b"v"), reason="r" * 50_000)
    assert size <= LIMIT
    assert len(envelope.reason) == 1000
    assert headers["dlq.reason"] == b"r" * 1000


def test_huge_headers_and_key_still_give_a_dead_letter_within_the_limit() -> None:
    envelope, headers, size = dead(source(b"v" * 2_000, key=b"k" * 4_000, big=b"h" * 4_000))
    assert size <= LIMIT
    assert "big" not in headers
    assert (envelope.source_partition, envelope.source_offset) == (3, 42)
    envelope, headers, size = dead(source(b"v" * 2_000, key=b"k" * 9_000))
    assert size <= LIMIT
    assert envelope.original_key == b""
    assert envelope.original_value == b"v" * 2_000
