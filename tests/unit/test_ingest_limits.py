"""Bounds of what ingest accepts: counts, times, lengths (pure validation)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_ingest.formats.payload import COUNT_CAP, PayloadError, count, epoch_time, iso_time
from socialcrm_ingest.formats.registry import NORMALIZERS
from socialcrm_ingest.security.limits import (
    HANDLE_MAX,
    ID_MAX,
    LINKS_MAX,
    X_TEXT_MAX,
    check,
    problem_of,
    text_max,
)

NOW = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 0), (0, 0), (41, 41), (41.0, 41), ("41", 0), (True, 0), (2**70, COUNT_CAP)],
)
def test_counts_that_can_be_counts_are_kept(value: Any, expected: int) -> None:
    assert count(value, "author.followers") == expected


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -5, -0.5, 4.5])
def test_counts_that_cannot_be_counts_are_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(PayloadError, match=r"^author\.followers "):
        count(value, "author.followers")


@pytest.mark.parametrize(
    "value", ["9999-12-31T00:00:00Z", "1999-12-31T23:59:59Z", "2026-11-17T10:00:01Z"]
)
def test_times_out_of_range_are_refused_naming_the_field(value: str) -> None:
    with pytest.raises(PayloadError, match=r"^messages\[0\]\.created_at .* out of range"):
        iso_time(value, "messages[0].created_at", NOW)


def test_a_time_up_to_a_day_ahead_is_kept_for_clocks_that_drift() -> None:
    assert iso_time("2026-11-17T09:59:59Z", "created_at", NOW) == NOW + timedelta(
        hours=23, minutes=59, seconds=59
    )


def test_an_offset_pushing_past_year_9999_is_refused_not_an_overflow() -> None:
    with pytest.raises(PayloadError, match="created_at"):
        iso_time("9999-12-31T23:00:00-05:00", "created_at", NOW)


@pytest.mark.parametrize("value", [253402214400, 253402214400000, "1e300", 0])
def test_unix_times_out_of_range_are_refused(value: Any) -> None:
    with pytest.raises(PayloadError, match=r"^entry\.time "):
        epoch_time(value, "entry.time", NOW)


def interaction(**fields: Any) -> interaction_pb2.Interaction:
    header = common_pb2.EventHeader(
        channel=fields.pop("channel", common_pb2.CHANNEL_FACEBOOK),
        external_id=fields.pop("external_id", "123_456"),
    )
    author = common_pb2.Author(handle=fields.pop("handle", "7409521113561234"))
    return interaction_pb2.Interaction(
        header=header, author=author, kind=fields.pop("kind", "comment"), **fields
    )


def test_texts_are_bounded_at_the_networks_own_maximum() -> None:
    assert text_max(common_pb2.CHANNEL_FACEBOOK, "comment") == 8_000
    assert text_max(common_pb2.CHANNEL_FACEBOOK, "post") == 63_206
    assert text_max(common_pb2.CHANNEL_INSTAGRAM, "comment") == 2_200
    assert text_max(common_pb2.CHANNEL_YOUTUBE, "comment") == 10_000
    assert text_max(common_pb2.CHANNEL_GOOGLE_REVIEWS, "review") == 4_096
    assert text_max(common_pb2.CHANNEL_X, "post") == X_TEXT_MAX > 25_000
    assert problem_of(interaction(text="x" * 8_000)) is None
    assert problem_of(interaction(text="x" * 8_001)) == (
        "text (CHANNEL_FACEBOOK comment) has 8001 characters, over the maximum of 8000"
    )


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"external_id": "1" * (ID_MAX + 1)}, "external id"),
        ({"conversation_id": "1" * (ID_MAX + 1)}, "conversation id"),
        ({"in_reply_to": "1" * (ID_MAX + 1)}, "in_reply_to"),
        ({"handle": "h" * (HANDLE_MAX + 1)}, "author handle"),
        ({"handle": "  @  "}, "author handle '  @  ' is blank"),
        ({"handle": "@"}, "is blank"),
        ({"language_hint": "fr" * 20}, "language"),
        ({"links": ["https://x.example"] * (LINKS_MAX + 1)}, "links"),
        ({"links": ["https://x.example/" + "a" * 3_000]}, "URL"),
    ],
)
def test_fields_over_their_bound_are_named(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(PayloadError, match=r"^item 1: ") as refused:
        check([interaction(), interaction(**fields)])
    assert named in str(refused.value)


def test_an_empty_handle_stays_allowed_where_the_network_gives_none() -> None:
    # An Instagram mention names no author until the Graph API is asked.
    assert problem_of(interaction(handle="", kind="mention")) is None


def test_every_format_of_the_registry_is_bounded() -> None:
    post = {
        "type": "post",
        "id": "p-1",
        "thread_id": "t-1",
        "author": {"username": "camille"},
        "text": "x" * 40_000,
        "created_at": "2026-11-16T09:00:00Z",
    }
    with pytest.raises(PayloadError, match="maximum of 32300"):
        NORMALIZERS["forum"](post, "acme", NOW)
