"""What every normalizer shares: the error that names the bad field, and field access."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from socialcrm import contract
from socialcrm.v1 import common_pb2

# Defined below both formats and security (whose bounds raise it too): see payload_error.
from socialcrm_ingest.payload_error import PayloadError as PayloadError


def path(where: str, field: str) -> str:
    """Where a field is: ``entry[0].id``, or just ``entry`` at the top of the body."""
    return f"{where}.{field}" if where else field


def require(obj: dict[str, Any], field: str, where: str) -> Any:
    value = obj.get(field)
    if value is None or value == "":
        raise PayloadError(f"{path(where, field)} is missing")
    return value


def as_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} is not an object")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise PayloadError(f"{where} is not a list")
    return value


def optional_object(obj: dict[str, Any], field: str, where: str) -> dict[str, Any]:
    """``obj[field]`` when it is an object, {} when absent; anything else is refused."""
    value = obj.get(field)
    return {} if value is None else as_object(value, path(where, field))


def optional_list(obj: dict[str, Any], field: str, where: str) -> list[Any]:
    value = obj.get(field)
    return [] if value is None else as_list(value, path(where, field))


# No real count comes near it; capped there, the sum of two counts still fits protobuf's int64.
COUNT_CAP = 2**62
# No network we read existed before 2000; an item dated later than a day after it reached us
# is a clock error or a forgery, and far-future dates break the SLA arithmetic downstream.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)


def count(value: Any, where: str) -> int:
    """A follower or engagement count; absent or not a number counts as 0.

    A number that no count can be (negative, fractional, NaN or infinite) is refused.
    """
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise PayloadError(f"{where} {value!r} is not a whole number")
    if value < 0:
        raise PayloadError(f"{where} {value!r} is negative")
    return min(int(value), COUNT_CAP)


def in_range(moment: datetime, where: str, ingested_at: datetime) -> datetime:
    """``moment`` when it can be the time of an item received at ``ingested_at``."""
    if not EARLIEST <= moment <= ingested_at + FUTURE_SLACK:
        raise PayloadError(
            f"{where} {moment.isoformat()} is out of range: not before "
            f"{EARLIEST.date().isoformat()} and at most 1 day after its arrival"
        )
    return moment


def epoch_time(value: Any, where: str, ingested_at: datetime) -> datetime:
    """A Unix time in seconds or milliseconds (Meta uses both, sometimes in one payload)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PayloadError(f"{where} is not a Unix time")
    try:
        number = float(value)
        # Seconds would reach 1e11 only in the year 5138: larger values are milliseconds.
        moment = datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise PayloadError(f"{where} {value!r} is not a Unix time") from exc
    return in_range(moment, where, ingested_at)


def iso_time(value: Any, where: str, ingested_at: datetime) -> datetime:
    """An ISO 8601 date-time with its offset ("Z" accepted), in UTC."""
    if not isinstance(value, str):
        raise PayloadError(f"{where} is not an ISO 8601 date-time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PayloadError(f"{where} {value!r} is not an ISO 8601 date-time") from exc
    if moment.tzinfo is None:
        raise PayloadError(f"{where} {value!r} has no UTC offset")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as exc:
        raise PayloadError(f"{where} {value!r} is out of range") from exc
    return in_range(moment, where, ingested_at)


def header(
    channel: common_pb2.Channel.ValueType,
    external_id: str,
    occurred_at: datetime,
    ingested_at: datetime,
) -> common_pb2.EventHeader:
    """The event header of an item: its event id derives from channel and external id only."""
    return common_pb2.EventHeader(
        event_id=contract.event_id_for(channel, external_id),
        channel=channel,
        external_id=external_id,
        occurred_at=_timestamp(occurred_at),
        ingested_at=_timestamp(ingested_at),
        schema_version=contract.SCHEMA_VERSION,
        producer="ingest",
    )


def item_author(event_header: common_pb2.EventHeader) -> str:
    """The handle of an author the network gives no stable user id for: this item's alone.

    Never a display name (anyone may take "Jean Dupont", or a customer's email address as
    one) nor a placeholder that pools every nameless author into one ("anonymous").
    """
    return f"unidentified/{event_header.event_id}"


def _timestamp(moment: datetime) -> Timestamp:
    try:
        return contract.timestamp(moment)
    except (ValueError, OverflowError) as exc:
        raise PayloadError(f"time {moment.isoformat()} is out of range") from exc
